"""MQTT: the Axis MQTT event bridge and Home Assistant discovery, owned by the supervisor.

    config.py     the stored configuration: validation of configureClient / configureEventPublication
                  parameters, defaults, the public view (no password, no private key)
    render.py     Axis payloads and topics for one notification (pure)
    homeassistant.py  discovery documents and entity states (pure)
    link.py       the paho-mqtt client: its network thread, a bounded queue and a publisher thread
    bridge.py     the supervisor's component: follows the event log, hands messages to the link,
                  turns Home Assistant lock commands into door pulses on the loop

Nothing here blocks the supervisor's loop: the loop only puts messages into a bounded queue.
docs/mqtt.md says what is published where and why.
"""
