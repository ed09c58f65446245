"""MQTT 5 or 3.1.1: the session settings and what the broker says about ``$share``.

MQTT 5 is the default; 3.1.1 stays selectable for old brokers. MQTT 3.1.1
keeps a session with ``clean_session = 0`` until the broker's own limit;
MQTT 5 replaces that with Clean Start plus a Session Expiry Interval sent in
CONNECT (MQTT 5.0 §3.1.2.4, §3.1.2.11.2): ``session_expiry`` seconds (7 days
by default) while the collector is away, after which the broker drops the
queue (the agents resend whatever was not receipted). A 3.1.1 session left
by an older collector is resumed as it is when the same client id comes
back over MQTT 5 (Mosquitto keeps one session per client id).

Only MQTT 5 lets the broker say whether it honours shared subscriptions:
CONNACK's Shared Subscription Available property (§3.2.2.3.17) and SUBACK
reason code 0x9E (§3.9.3). Under 3.1.1 a broker without them may accept
``$share/<group>/…`` as an ordinary filter that matches nothing, so the
collector warns at start.
"""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collector.config import MqttSettings

SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E  # SUBACK reason code, MQTT 5.0 §3.9.3


def is_v5(settings: MqttSettings) -> bool:
    """Tell whether the link speaks MQTT 5."""
    return settings.protocol == "5"


def client_options(settings: MqttSettings) -> dict[str, Any]:
    """Return the paho ``Client`` keyword arguments for the configured protocol."""
    if is_v5(settings):
        return {"protocol": mqtt.MQTTv5}  # clean start is a CONNECT flag in MQTT 5
    return {"protocol": mqtt.MQTTv311, "clean_session": settings.clean_session}


def connect_options(settings: MqttSettings) -> dict[str, Any]:
    """Return the extra ``connect_async`` arguments (MQTT 5: clean start and session expiry)."""
    if not is_v5(settings):
        return {}
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0 if settings.clean_session else settings.session_expiry
    return {"clean_start": settings.clean_session, "properties": props}


def receive_maximum(props: Any) -> int:
    """Return the broker's Receive Maximum from CONNACK (MQTT 5.0 §3.2.2.3.3; 65,535 if absent).

    paho does not cap its in-flight publishes by it, and a strict broker
    disconnects a client that exceeds it (§3.3.4).
    """
    value = getattr(props, "ReceiveMaximum", None)
    return value if isinstance(value, int) and value > 0 else 65_535


def share_warning_at_start(settings: MqttSettings) -> str | None:
    """Return the warning for a ``share_group`` the broker cannot confirm (MQTT 3.1.1)."""
    if not settings.share_group or is_v5(settings):
        return None
    return (
        f"[mqtt] share_group = {settings.share_group!r} over MQTT 3.1.1: the broker cannot "
        "say whether it honours $share subscriptions, and one that does not accepts them "
        'and delivers nothing; use protocol = "5" to have it checked, or share_group = "" '
        "with a single collector"
    )


def share_refused_by_connack(settings: MqttSettings, properties: Any) -> str | None:
    """Return an error when an MQTT 5 CONNACK says shared subscriptions are unavailable."""
    if not settings.share_group or not is_v5(settings) or properties is None:
        return None
    if getattr(properties, "SharedSubscriptionAvailable", 1) == 0:
        return (
            f"the broker does not support shared subscriptions (CONNACK), so [mqtt] "
            f'share_group = {settings.share_group!r} receives nothing: set share_group = ""'
        )
    return None


def share_refused_by_suback(settings: MqttSettings, codes: Any) -> str | None:
    """Return an error when SUBACK refused a ``$share`` filter as unsupported."""
    if not settings.share_group:
        return None
    if any(getattr(code, "value", None) == SHARED_SUBSCRIPTIONS_NOT_SUPPORTED for code in codes):
        return (
            f"the broker refused the $share/{settings.share_group}/… subscriptions "
            '(shared subscriptions not supported): set [mqtt] share_group = ""'
        )
    return None
