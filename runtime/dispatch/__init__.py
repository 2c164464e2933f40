"""The dispatcher: follows the log, plans commands per priority, publishes them over MQTT, reads acks and statuses."""
