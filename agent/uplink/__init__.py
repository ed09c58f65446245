"""The agent's way to the cloud: an MQTT link, the forwarder and its pacing."""
