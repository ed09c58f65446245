"""The contract between the Logbot edge agent and the collector.

Pure code, no I/O: topics, identifiers, message types, the wire codec and
units. Both applications import it; it imports neither.
"""

from protocols.codec import MAX_MESSAGE_BYTES, TYPE_FOR_KIND, decode, encode
from protocols.errors import (
    DecodeError,
    IdentifierError,
    OversizeError,
    ProtocolError,
    TopicError,
    VersionError,
)
from protocols.identifiers import check_identifier, is_epoch, is_identifier, is_subject
from protocols.messages import (
    SCHEMA_VERSION,
    TRANSIENT_REASONS,
    Command,
    CommandReply,
    DataBatch,
    DataPoint,
    DiskUsage,
    HealthReport,
    Inventory,
    Message,
    ModemHealth,
    Peripheral,
    Receipt,
    RejectedRange,
    Status,
    UsageBatch,
    UsageRecord,
    parse_record_id,
    record_id,
)
from protocols.topics import Kind, Topic, TopicFilter, matches_filter
from protocols.units import MAX_QUANTITY, MAX_WINDOW_SECONDS, Service, Unit

__all__ = [
    "MAX_MESSAGE_BYTES",
    "MAX_QUANTITY",
    "MAX_WINDOW_SECONDS",
    "SCHEMA_VERSION",
    "TRANSIENT_REASONS",
    "TYPE_FOR_KIND",
    "Command",
    "CommandReply",
    "DataBatch",
    "DataPoint",
    "DecodeError",
    "DiskUsage",
    "HealthReport",
    "IdentifierError",
    "Inventory",
    "Kind",
    "Message",
    "ModemHealth",
    "OversizeError",
    "Peripheral",
    "ProtocolError",
    "Receipt",
    "RejectedRange",
    "Service",
    "Status",
    "Topic",
    "TopicError",
    "TopicFilter",
    "Unit",
    "UsageBatch",
    "UsageRecord",
    "VersionError",
    "check_identifier",
    "decode",
    "encode",
    "is_epoch",
    "is_identifier",
    "is_subject",
    "matches_filter",
    "parse_record_id",
    "record_id",
]
