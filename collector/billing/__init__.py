"""Rating and credits: price book, monthly close in logbit, packs, coupons, notices, suspension.

Pure parts (no I/O): ``money``, ``periods``, ``price_book``, ``rating``,
``cart``, ``payments``. Store parts take a plain ``sqlite3.Connection`` on the
shared collector database (WAL) and keep every write in one short
``BEGIN IMMEDIATE`` transaction: ``schema``, ``db``, ``usage``, ``close``,
``ledger``, ``orders``, ``coupons``, ``notices``, ``activations``,
``support_cards``. See README.md. The asynchronous edges are
``scheduler`` (automatic monthly close, clock injected) and ``commands``
(suspend/resume to agents through a ``CommandSender``).
"""

import logging

from collector.billing.errors import BillingError
from collector.billing.money import round_logbit

# Library logging convention: the application decides where records go.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["BillingError", "round_logbit"]
