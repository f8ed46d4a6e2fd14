"""Where the key comes from, which hosts are fal's, and where files live.

The key is read once into an :class:`ApiKey`, whose ``repr`` and ``str`` mask it. Only the client asks it for
the header value, and only for the API origins in :class:`Endpoints` (never the CDN, media or signed URLs).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigError

__all__ = [
    "ApiKey",
    "Endpoints",
    "Settings",
    "Limits",
    "find_key",
    "load_settings",
    "origin_of",
    "read_max_cost",
    "MAX_COST_ENV",
    "DEFAULT_QUEUE",
    "DEFAULT_REST",
    "DEFAULT_CDN",
    "DEFAULT_OPENAPI",
    "DEFAULT_PLATFORM",
]

DEFAULT_QUEUE = "https://queue.fal.run"
DEFAULT_REST = "https://rest.fal.ai"
DEFAULT_CDN = "https://v3.fal.media"
DEFAULT_OPENAPI = "https://fal.ai"
DEFAULT_PLATFORM = "https://api.fal.ai"  # fal's platform API (models, pricing, usage, request history): /v1/…
LEGACY_TOOLS_MD = Path("~/.openclaw/workspace/TOOLS.md")

_QUOTES = "\"'`"


def _clean(value: str) -> str:
    """Strip whitespace and one layer of quotes: a pasted key often carries a newline or quotes (401 otherwise)."""
    value = value.strip()
    while len(value) >= 2 and value[0] in _QUOTES and value[-1] == value[0]:
        value = value[1:-1].strip()
    return value.strip(_QUOTES).strip()


class ApiKey:
    """A fal API key (``key_id:key_secret``) that never shows itself.

    >>> ApiKey("1234abcd:secret")
    ApiKey('1234…', source='argument')
    """

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str = "argument") -> None:
        cleaned = _clean(value)
        if not cleaned:
            raise ValueError("an empty API key")
        self._value = cleaned
        self.source = source

    @property
    def masked(self) -> str:
        """The first 4 characters of the key id and nothing of the secret."""
        return f"{self._value[:4]}…" if len(self._value) > 8 else "…"

    @property
    def well_formed(self) -> bool:
        """Visible ASCII only. A space, line break, control or non-ASCII character cannot go in an HTTP header
        (and httpx would quote the whole header, key included, in its error), so such a key is never sent."""
        return all("!" <= ch <= "~" for ch in self._value)

    @property
    def shaped(self) -> bool:
        """Whether the key has fal's ``key_id:key_secret`` shape: one colon with text on both sides."""
        key_id, colon, secret = self._value.partition(":")
        return bool(colon and key_id and secret and ":" not in secret)

    def problem(self) -> str | None:
        """What is wrong with the key, as advice, or ``None``. Never quotes the key."""
        if not self.well_formed:
            return ("the key holds a space, line break, control or non-ASCII character and cannot be sent; copy it "
                    "again as key_id:key_secret (https://fal.ai/dashboard/keys)")
        if not self.shaped:
            return ("the key is not of fal's form key_id:key_secret (one colon, text on both sides); copy the whole "
                    "key again from https://fal.ai/dashboard/keys")
        return None

    def header_value(self) -> str:
        """The ``Authorization`` header value. Only the client calls this, for fal's API origins."""
        return f"Key {self._value}"

    def reveal(self) -> str:
        """The raw key, for handing to another fal client in the same process. Never print it."""
        return self._value

    def __repr__(self) -> str:
        return f"ApiKey({self.masked!r}, source={self.source!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self):  # never pickled with the secret (e.g. into a store or a subprocess by accident)
        raise TypeError("ApiKey cannot be pickled")


# TOOLS.md formats the original skill accepted, most specific first. `:` is part of a key (key_id:key_secret).
_KEY_CHARS = r"[\"'`]?([A-Za-z0-9_.:\-]{8,})[\"'`]?"
_TOOLS_PATTERNS = [
    re.compile(r"^\W*FAL_KEY\W*?\s*[:=]\s*" + _KEY_CHARS, re.IGNORECASE | re.MULTILINE),
    re.compile(r"^\W*fal(?:\.ai)?[ _-]*(?:api[ _-]*)?key\W*?\s*[:=]\s*" + _KEY_CHARS, re.IGNORECASE | re.MULTILINE),
]


def _key_from_tools_md(text: str) -> str | None:
    for pattern in _TOOLS_PATTERNS:
        for match in pattern.finditer(text):
            if not match.group(1).lower().startswith("your"):  # the template's "your-key-here"
                return match.group(1)
    return None


def tools_md_candidates(env: Mapping[str, str], cwd: Path | None = None) -> list[Path]:
    """TOOLS.md paths in lookup order: ``$FAL_TOOLS_MD``, ``./TOOLS.md``, ``~/.openclaw/workspace/TOOLS.md``."""
    if env.get("FAL_TOOLS_MD"):
        return [Path(env["FAL_TOOLS_MD"]).expanduser()]
    return [(cwd or Path.cwd()) / "TOOLS.md", LEGACY_TOOLS_MD.expanduser()]


def find_key(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> ApiKey | None:
    """``FAL_KEY`` → ``FAL_KEY_ID`` + ``FAL_KEY_SECRET`` → TOOLS.md. ``None`` when none has a key."""
    env = os.environ if env is None else env
    if _clean(env.get("FAL_KEY", "")):
        return ApiKey(env["FAL_KEY"], source="FAL_KEY")
    key_id, secret = _clean(env.get("FAL_KEY_ID", "")), _clean(env.get("FAL_KEY_SECRET", ""))
    if key_id and secret:
        return ApiKey(f"{key_id}:{secret}", source="FAL_KEY_ID/FAL_KEY_SECRET")
    for path in tools_md_candidates(env, cwd):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        found = _key_from_tools_md(text)
        if found:
            return ApiKey(found, source=str(path))
    return None


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased, default ports dropped."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    port = parts.port
    if port is None or (scheme, port) in {("https", 443), ("http", 80)}:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


@dataclass(frozen=True)
class Endpoints:
    """The fal origins. ``FAL_NOTEBOOK_ENDPOINT`` sends all of them to one origin (the emulator)."""

    queue: str = DEFAULT_QUEUE
    rest: str = DEFAULT_REST
    cdn: str = DEFAULT_CDN
    openapi: str = DEFAULT_OPENAPI
    platform: str = DEFAULT_PLATFORM
    emulated: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Endpoints:
        env = os.environ if env is None else env
        override = env.get("FAL_NOTEBOOK_ENDPOINT", "").strip().rstrip("/")
        if override:
            return cls(queue=override, rest=override, cdn=override, openapi=override, platform=override,
                       emulated=True)
        return cls()

    @property
    def api_origins(self) -> frozenset[str]:
        """Origins that may receive ``Authorization: Key …``: the queue, REST and platform API hosts only."""
        return frozenset({origin_of(self.queue), origin_of(self.rest), origin_of(self.platform)})

    def platform_url(self, path: str) -> str:
        """``{platform}/v1/{path}``: fal's platform API (``https://api.fal.ai/v1/models``…)."""
        return f"{self.platform.rstrip('/')}/v1/{path.lstrip('/')}"

    def openapi_url(self, endpoint_id: str) -> str:
        return f"{self.openapi}/api/openapi/queue/openapi.json?endpoint_id={endpoint_id}"


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    """A positive number from the environment; a bad value is refused with its name (not silently ignored)."""
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"{name}={text!r} is not a positive number (default {default:g})")
    return value


@dataclass(frozen=True)
class Limits:
    """Bounds on what a server's answer may cost here: a hostile or broken result must not fill the disk,
    hang a download or eat the kernel's memory. Each has an environment override (``FAL_NOTEBOOK_…``).

    ``download_mb`` caps one media file; ``download_seconds`` is one file's total deadline (a slow-loris
    server that trickles a byte at a time is cut off); ``max_outputs`` caps the files downloaded per job (the
    rest stay as links, the card says "and N more"); ``max_redirects`` bounds a media download's redirect chain.
    ``listing_delay``: how long after a submit whose reply was lost fal's request history is searched before
    concluding that fal never received it. ``unfollowable_seconds``: a job whose status cannot be read for this
    long ends EXPIRED (fal keeps results 1 h), so ``wait()`` always returns. (Thumbnails have their own pixel
    cap, ``media.THUMB_MAX_PIXELS``.)
    """

    download_mb: float = 2048.0
    download_seconds: float = 900.0
    max_outputs: int = 64
    max_redirects: int = 5
    listing_delay: float = 300.0
    unfollowable_seconds: float = 3900.0

    @property
    def download_bytes(self) -> int:
        return int(self.download_mb * 2**20)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Limits:
        env = os.environ if env is None else env
        return cls(
            download_mb=_number(env, "FAL_NOTEBOOK_MAX_DOWNLOAD_MB", cls.download_mb),
            download_seconds=_number(env, "FAL_NOTEBOOK_DOWNLOAD_SECONDS", cls.download_seconds),
            max_outputs=int(_number(env, "FAL_NOTEBOOK_MAX_OUTPUTS", cls.max_outputs)),
            listing_delay=_number(env, "FAL_NOTEBOOK_LISTING_DELAY", cls.listing_delay),
            unfollowable_seconds=_number(env, "FAL_NOTEBOOK_UNFOLLOWABLE_SECONDS", cls.unfollowable_seconds),
        )


MAX_COST_ENV = "FAL_NOTEBOOK_MAX_COST"
_NO_LIMIT = {"", "none", "off", "no", "unlimited"}


def read_max_cost(env: Mapping[str, str] | None = None) -> float | None:
    """The budget per job or group (``FAL_NOTEBOOK_MAX_COST``, in the price's currency); ``None``: no limit.

    Read at each submit rather than held in :class:`Settings`, so ``%fal config max_cost=…`` applies at once
    without rebuilding the job manager."""
    env = os.environ if env is None else env
    text = env.get(MAX_COST_ENV, "").strip().lstrip("$")
    if text.lower() in _NO_LIMIT:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise ConfigError(f"{MAX_COST_ENV}={text!r} is not an amount: use a number such as 2.50 (or 'none' for "
                          "no limit)")
    return value


GROUP_LIMIT = 16


def _group_limit(env: Mapping[str, str]) -> int:
    text = env.get("FAL_NOTEBOOK_GROUP_LIMIT", "").strip()
    if not text:
        return GROUP_LIMIT
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"FAL_NOTEBOOK_GROUP_LIMIT must be a whole number of at least 1, got {text!r}")
    return int(text)


def _default_home() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("fal-notebook", appauthor=False))


@dataclass(frozen=True)
class Settings:
    """Everything read from the environment, once. Pass a modified copy (``dataclasses.replace``) in tests."""

    key: ApiKey | None
    endpoints: Endpoints = field(default_factory=Endpoints)
    home: Path = field(default_factory=_default_home)
    outputs: Path = field(default_factory=lambda: Path("fal_outputs"))
    limits: Limits = field(default_factory=Limits)
    reattach: str = "unfinished"  # a %fal cell run again shows its earlier job: unfinished | finished | off
    group_limit: int = GROUP_LIMIT  # a group (--n, --sweep) larger than this needs --yes / confirm=True

    @property
    def store_path(self) -> Path:
        return self.home / "jobs.sqlite3"

    @property
    def schema_cache(self) -> Path:
        return self.home / "schemas"

    def describe(self) -> str:
        """One line for humans: endpoint, masked key or how to set one."""
        where = f"emulator at {self.endpoints.queue}" if self.endpoints.emulated else self.endpoints.queue
        if self.key is None:
            how = "no key: set FAL_KEY=key_id:key_secret (https://fal.ai/dashboard/keys)"
        else:
            how = f"key {self.key.masked} from {self.key.source}"
        return f"fal_notebook → {where}; {how}"


REATTACH_MODES = ("unfinished", "finished", "off")
NO_KEY = ("No fal API key: set FAL_KEY=key_id:key_secret (get one at https://fal.ai/dashboard/keys), or "
          "FAL_KEY_ID and FAL_KEY_SECRET, or put it in TOOLS.md")


def key_problem(settings: Settings) -> str | None:
    """Why no request can be sent with these settings' key (none, or unsendable), or ``None``."""
    if settings.key is None:
        return NO_KEY
    return None if settings.key.well_formed else settings.key.problem()


def load_settings(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """Read key, endpoints, folders (``FAL_NOTEBOOK_HOME``, ``FAL_NOTEBOOK_OUTPUTS``), limits and the largest
    group sent without confirmation (``FAL_NOTEBOOK_GROUP_LIMIT``, default 16) from the environment."""
    env = os.environ if env is None else env
    home = Path(env["FAL_NOTEBOOK_HOME"]).expanduser() if env.get("FAL_NOTEBOOK_HOME") else _default_home()
    outputs = Path(env.get("FAL_NOTEBOOK_OUTPUTS") or "fal_outputs").expanduser()
    reattach = (env.get("FAL_NOTEBOOK_REATTACH") or "unfinished").strip().lower()
    if reattach not in REATTACH_MODES:
        raise ConfigError(f"FAL_NOTEBOOK_REATTACH={reattach!r} is not one of {', '.join(REATTACH_MODES)}")
    return Settings(key=find_key(env, cwd), endpoints=Endpoints.from_env(env), home=home, outputs=outputs,
                    limits=Limits.from_env(env), reattach=reattach, group_limit=_group_limit(env))
