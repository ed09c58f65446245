"""``[payments]``: validated one line per bad value, and wired into the running app."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector.billing import card_webhook
from collector.config import PaymentsSettings, load_settings, settings_from_mapping
from collector.errors import ConfigError
from collector.wiring import build_full_app, open_database
from tests.fleet.conftest import FakeClock, prepare_database
from tests.fleet.live import seed, serve

SECRET = b"whsec_" + b"p" * 26


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "card-webhook-secret"
    path.write_bytes(SECRET + b"\n")
    return path


def test_defaults_keep_todays_behaviour() -> None:
    settings = settings_from_mapping({}, {})
    assert settings.payments == PaymentsSettings()
    assert settings.payments.card_provider == "card"
    assert settings.payments.card_checkout_url == ""
    assert settings.payments.card_webhook_secret_file == ""  # the file beside the ledger


def test_a_complete_section_from_a_file_and_the_environment(
    tmp_path: Path, secret_file: Path
) -> None:
    config = tmp_path / "collector.toml"
    config.write_text(
        "[payments]\n"
        'card_provider = "nexi"\n'
        'card_checkout_url = "https://pay.example/checkout"\n'
        f'card_webhook_secret_file = "{secret_file}"\n',
        encoding="utf-8",
    )
    settings = load_settings(config, {"LOGBOT_COLLECTOR_PAYMENTS_CARD_PROVIDER": "adyen"})
    assert settings.payments == PaymentsSettings(
        card_provider="adyen",
        card_checkout_url="https://pay.example/checkout",
        card_webhook_secret_file=str(secret_file),
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"card_provider": "Nexi Pay"}, "[payments] card_provider: 'Nexi Pay' is not a lower-case"),
        ({"card_provider": ""}, "[payments] card_provider: '' is not a lower-case name"),
        ({"card_provider": 7}, "[payments] card_provider: 7 is not a str"),
        (
            {"card_checkout_url": "http://pay.example/checkout"},
            "[payments] card_checkout_url: must be an https:// URL",
        ),
        ({"card_checkout_url": "pay.example"}, "[payments] card_checkout_url: must be an https://"),
        (
            {"card_checkout_url": "https://pay.example/c?shop=1"},
            "[payments] card_checkout_url: must not have a query: ?reference= is added",
        ),
        (
            {"card_webhook_secret_file": "/nonexistent/secret"},
            "[payments] card_webhook_secret_file: '/nonexistent/secret' does not exist",
        ),
        ({"iban": "IT60X0542811101000000123456"}, "[payments] iban: unknown option"),
    ],
)
def test_each_bad_value_is_one_clear_line(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings_from_mapping({"payments": values}, {})
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_a_short_or_unreadable_secret_is_refused(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_bytes(b"secret\n")
    with pytest.raises(ConfigError, match=r"holds 6 bytes; a secret needs 16$"):
        settings_from_mapping({"payments": {"card_webhook_secret_file": str(short)}}, {})
    with pytest.raises(ConfigError, match=r"cannot be read"):
        settings_from_mapping({"payments": {"card_webhook_secret_file": str(tmp_path)}}, {})
    with pytest.raises(
        ConfigError, match=r"^\[environment\] LOGBOT_COLLECTOR_PAYMENTS_CARD_PROVIDR"
    ):
        settings_from_mapping({}, {"LOGBOT_COLLECTOR_PAYMENTS_CARD_PROVIDR": "x"})


def test_the_running_app_uses_the_section(tmp_path: Path, secret_file: Path) -> None:
    db = tmp_path / "ledger.sqlite3"
    prepare_database(db)
    world = seed(db, FakeClock(datetime.now(UTC)))
    settings = settings_from_mapping(
        {
            "ledger": {"path": str(db)},
            "payments": {
                "card_provider": "nexi",
                "card_checkout_url": "https://pay.example/checkout",
                "card_webhook_secret_file": str(secret_file),
            },
        },
        {},
    )
    app = build_full_app(settings, open_database(settings))
    auth = {"Authorization": f"Bearer {world.tokens['a_admin']}"}
    with serve(app) as url, httpx.Client(base_url=f"{url}/api/v1", timeout=30) as client:
        placed = client.post(
            "/accounts/acme/orders",
            json={"items": [{"sku": "LOGBOT-CREDIT-100", "quantity": 1}], "channel": "card"},
            headers={**auth, "Idempotency-Key": "checkout-settings-1"},
        )
        assert placed.status_code == 201, placed.text
        order = placed.json()
        reference = order["payment_reference"]
        assert order["payment_url"] == f"https://pay.example/checkout?reference={reference}"
        event = {
            "id": "evt_settings_1",
            "type": "payment.succeeded",
            "data": {
                "order_id": int(order["order_id"]),
                "reference": reference,
                "amount": order["total"],
                "currency": "EUR",
            },
        }
        raw = json.dumps(event).encode()

        def post(secret: bytes) -> httpx.Response:
            signature = card_webhook.sign(secret, raw, datetime.now(UTC))
            return client.post(
                "/payments/card/webhook",
                content=raw,
                headers={"Logbot-Signature": signature, "Content-Type": "application/json"},
            )

        assert post(b"another secret of 32 bytes......").status_code == 400
        credited = post(SECRET)
        assert credited.status_code == 200, credited.text
        assert credited.json()["outcome"] == "credited"
        paid = client.get(f"/accounts/acme/orders/{order['order_id']}", headers=auth).json()
        assert paid["status"] == "confirmed"
