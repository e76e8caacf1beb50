"""Ports: the abstract interfaces every backend implements.

Each external concern sits behind one port; each backend is one module implementing it. The
local backend is real and durable (the embedded default); the AWS backend talks to AWS APIs.
Adapters never create cloud resources in their constructors: provisioning is the deploy step.

::

    port (lakeline.ports.*)         local (lakeline.adapters.local.*)   AWS (issue: AWS adapters)
    ─────────────────────────────   ─────────────────────────────────   ─────────────────────────
    ObjectStore   objectstore.py    FsObjectStore     directories        S3 buckets / prefixes
    Queue         queue.py          SqliteQueue       SQLite (WAL)       SQS + DLQ
    StateStore    state.py          SqliteStateStore  SQLite (WAL)       DynamoDB
    ParameterStore params.py        SqliteParameterStore                 SSM Parameter Store
    Notifier      notifier.py       OutboxNotifier    log + outbox file  SNS
    Ledger        lineage.py        SqliteLedger      SQLite (WAL)       DynamoDB (+ GSIs)

The contract suites in ``tests/contract`` run the same tests against every backend.
"""

from lakeline.ports.lineage import Ledger
from lakeline.ports.lineage_model import Node
from lakeline.ports.notifier import Notification, Notifier
from lakeline.ports.objectstore import ObjectInfo, ObjectStore, validate_key
from lakeline.ports.params import ParameterStore
from lakeline.ports.queue import Message, Queue, QueueCounts
from lakeline.ports.state import BeginResult, Item, StateStore

__all__ = [
    "BeginResult",
    "Item",
    "Ledger",
    "Message",
    "Node",
    "Notification",
    "Notifier",
    "ObjectInfo",
    "ObjectStore",
    "ParameterStore",
    "Queue",
    "QueueCounts",
    "StateStore",
    "validate_key",
]
