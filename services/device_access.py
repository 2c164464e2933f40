"""Device access to the broker: issuing (or rotating) a device's MQTT credentials, and the broker's password file, ACL
and listener written from the endpoint registry as it stands (docs/broker.md).

The collaborators are explicit: the application (`Keng`, the unit of work), the device password hashes and keng's own
broker accounts (adapters/mqtt/accounts.py, private files in the data directory). The rule of who may issue
credentials is the domain's (`Endpoint.issue_credentials`: an admin whose scope covers the endpoint); what the broker
files say is the adapter's (adapters/mqtt/provision.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from keng.adapters.mqtt.accounts import KENG_ACCOUNT, DevicePasswords, KengAccounts, new_password
from keng.adapters.mqtt.protocol import CLASS_OF_KIND
from keng.adapters.mqtt.provision import BrokerOptions, DeviceGrant, Written, write_broker_files
from keng.adapters.store.app import Keng
from keng.domain.errors import IllegalTransition
from keng.projections.catalog import Catalog

log = structlog.get_logger(__name__)
KENG_ACCOUNTS = (KENG_ACCOUNT,)


@dataclass(frozen=True)
class Issued:
    """A device's new credentials (the password is shown once and kept nowhere) and whether they replaced others."""

    username: str
    password: str
    rotated: bool


def issue_credentials(app: Keng, passwords: DevicePasswords, *, code: str, by: str) -> Issued:
    """Issue (or rotate) the MQTT credentials of the device `code` as the staff member `by`; the broker accepts them
    once its files are regenerated (`broker_config`) and reloaded. Only the password's hash is stored."""
    actor = app.staff(by)
    endpoint = app.endpoint(code)
    if endpoint.code in KENG_ACCOUNTS:
        raise IllegalTransition(
            f"rule mqtt-account-reserved: {endpoint.code!r} is keng's own broker account; "
            "the endpoint needs another code"
        )
    rotated = endpoint.issue_credentials(actor=actor)
    password = new_password()
    # The event first: a save refused (a concurrent write) must not leave a changed hash that nothing records; a
    # failed write of the hash after it leaves the old password working and the event says only that one was issued.
    app.save_changes(endpoint)
    passwords.set(endpoint.code, password)
    log.info("endpoint.credentials_issued", actor=actor.handle, endpoint=endpoint.code, rotated=rotated)
    return Issued(endpoint.code, password, rotated)


def device_grants(catalog: Catalog, issued: set[str], at: datetime | None = None) -> list[DeviceGrant]:
    """What each device with issued credentials may do, from the registry: every endpoint in service of a kind that
    connects to the broker, with its areas on the tree in force at `at` (default now: group, ward, then district
    and city or province, the dispatcher's group topics)."""
    parents = catalog.area_registry().in_force(at or datetime.now(UTC)).parents
    grants = []
    for e in catalog.endpoints():
        if e.code in issued and not e.decommissioned and e.connects_to_broker:
            chain: list[str] = []
            node: str | None = e.group or e.ward
            while node is not None and node not in chain and len(chain) < 16:  # a cycle cannot hang us
                chain.append(node)
                node = parents.get(node)
            grants.append(DeviceGrant(e.code, CLASS_OF_KIND[e.kind], tuple(chain)))
    return grants


def broker_config(
    app: Keng,
    passwords: DevicePasswords,
    accounts: KengAccounts,
    options: BrokerOptions,
    *,
    now: datetime | None = None,
) -> Written:
    """Write the broker's files from the registry as of now (every device with credentials and in service, and
    keng's own accounts, whose passwords are generated once and kept)."""
    catalog = Catalog().fold(app.read_events())
    hashes = passwords.hashes()
    grants = device_grants(catalog, set(hashes), now or app.clock())
    keng = {account: accounts.password(account) for account in KENG_ACCOUNTS}
    written = write_broker_files(options, grants, hashes, keng, now=now)
    log.info("broker.config_written", out=str(options.out), devices=len(grants), tls=options.tls is not None,
             ca=written.ca, server_cert=written.server_cert)  # fmt: skip
    return written
