"""Deliver the outboxes for real: e-mail over SMTP and signed webhooks.

Billing (``notification_outbox``: notices, suspension, resumption, purchase
and activation confirmations) and the fleet (``fleet_mail_outbox``:
invitations, contract details) queue messages inside the transaction that
caused them. :class:`~collector.notify.worker.Notifier` drains both: it
claims due messages (a lease, so two collectors never send one message at
once), sends them, and records the outcome in ``deliveries`` — sent, or
retried with exponential backoff, or dead-lettered after ``max_attempts``.
"""

from collector.notify.smtp import SmtpSender
from collector.notify.webhook import WebhookSender, sign
from collector.notify.worker import DrainReport, Notifier, NotifyPolicy

__all__ = ["DrainReport", "Notifier", "NotifyPolicy", "SmtpSender", "WebhookSender", "sign"]
