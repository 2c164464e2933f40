"""The web console (`/console/`): Vietnamese, server-rendered pages for operators, approvers and auditors.

Served by `keng serve` itself (no front-end build): jinja2 templates and a little vanilla JavaScript, live parts over
server-sent events. Every page calls the same use cases as the API (services/) with the signed-in person as actor, so
the authority rules are the domain's: the console hides buttons a person may not press, and the server refuses them
anyway.

- `app.py`: the sub-application, its middleware (sessions, CSRF, security headers, HTML error pages) and routes.
- `session.py`: sealed session cookies, CSRF tokens, `Person` (who is signed in and what they may do).
- `render.py`, `labels.py`: templates, Vietnamese labels and date formats (dd/mm/yyyy, 24 h, Asia/Ho_Chi_Minh).
- one module per page family: `signin.py`, `home.py`, ...
"""
