"""Rating and credits: price book, monthly close in logbit, packs, coupons, notices, suspension.

Pure parts (no I/O): ``money``, ``periods``, ``price_book``, ``rating``,
``cart``, ``payments``. Store parts take a ``collector.store.db.Session`` on
the shared collector database and keep every write in one short write
transaction (``Session.write``, which runs alone on SQLite and PostgreSQL):
``usage``, ``close``, ``ledger``, ``orders``, ``invoices``, ``coupons``,
``notices``, ``activations``, ``support_cards``; their SQL is in
``collector.store.repo_billing*``, and the money core (ledger, coupons,
notices, close) codes against the ``repository.BillingRepo`` Protocol. See
README.md. The asynchronous edges are
``scheduler`` (automatic monthly close, clock injected) and ``commands``
(suspend/resume to agents through a ``CommandSender``).
"""

import logging

from collector.billing.errors import BillingError
from collector.billing.money import round_logbit

# Library logging convention: the application decides where records go.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["BillingError", "round_logbit"]
