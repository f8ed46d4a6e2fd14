"""fal's HTTP APIs: the queue (submit, status, stream, result, cancel), uploads, the platform API (models,
prices, estimates, usage, request history), retries and wire types.

The only folder that imports httpx. One ``AsyncQueueClient`` per event loop; ``QueueClient`` is its blocking face.
"""

from .platform import AsyncPlatformClient, PlatformClient
from .platform_wire import Estimate, ModelInfo, Price, RequestItem, UsageLine
from .queue import DEFAULT_TIMEOUT, AsyncQueueClient, QueueClient
from .retry import TRANSIENT_STATUS, RetryPolicy
from .uploads import async_upload, upload
from .wire import RequestHandle, Status, normalize_endpoint_id, split_endpoint_id

__all__ = [
    "AsyncQueueClient", "QueueClient", "RequestHandle", "Status", "RetryPolicy", "DEFAULT_TIMEOUT",
    "TRANSIENT_STATUS", "upload", "async_upload", "normalize_endpoint_id", "split_endpoint_id",
    "AsyncPlatformClient", "PlatformClient", "ModelInfo", "Price", "Estimate", "UsageLine", "RequestItem",
]
