"""Where the client connects and with which token (docs/client.md, "Configuration").

Precedence, highest first, for the URL:
    1. the flag / argument (`--url`, `Client(url=...)`)
    2. the environment: `STAGE1_URL`, else `STAGE1_GATEWAY_URL`
    3. a profile of `$XDG_CONFIG_HOME/stage1/config.toml` (else `~/.config/stage1/config.toml`):
       the one named by `--profile` / `Client(profile=)`, else `STAGE1_PROFILE`, else `default`
    4. the repository's local stack: the file `STAGE1_ENV_FILE` names, else `.state/stage1.env`
    5. http://127.0.0.1:3000
The token is the flag's, else `STAGE1_TOKEN`, else the token of the tier that gave the URL — a
profile's or the local stack's token is never sent to a URL that came from elsewhere.

The file is written by `save_profile` (a tiny TOML writer: string values only) with mode 0600, and
read with the standard library's `tomllib`; a config file that others can read or write is refused.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from stage1_wire.dotenv import read_dotenv

DEFAULT_URL = "http://127.0.0.1:3000"
DEFAULT_PROFILE = "default"
# The local stack's settings file, relative to a checkout of the repository.
LOCAL_ENV_FILE = Path(".state") / "stage1.env"
PROFILE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_CONFIG_BYTES = 1024 * 1024


class ConfigError(Exception):
    """A bad profile name, an unreadable or too-open config file (the CLI exits 2)."""


@dataclass(frozen=True)
class Resolved:
    url: str
    token: str
    source: str  # "flag", "env", "profile NAME", "local stack FILE", "default"


def config_path(environ: dict[str, str] | os._Environ[str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "stage1" / "config.toml"


def check_name(name: str) -> str:
    if not PROFILE_NAME.fullmatch(name or ""):
        raise ConfigError(f"profile name must be 1-64 characters from [A-Za-z0-9_-]: {name[:64]!r}")
    return name


def load_profiles(path: Path | None = None) -> dict[str, dict[str, str]]:
    """{name: {"url", "token"}} of the config file ({} when there is none)."""
    import tomllib

    path = path or config_path()
    try:
        info = path.stat()
    except FileNotFoundError:
        return {}
    if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path} is readable by others (mode {stat.S_IMODE(info.st_mode):o}); "
                          f"it holds tokens: chmod 600 {path}")
    if info.st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        doc = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    profiles = doc.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"{path}: [profiles] must be a table")
    return {name: {k: v for k, v in body.items() if isinstance(v, str)}
            for name, body in profiles.items() if isinstance(body, dict)}


def _toml_string(value: str) -> str:
    out = ['"']
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def dump_profiles(profiles: dict[str, dict[str, str]]) -> str:
    """The config file's text: one `[profiles.NAME]` table of string keys per profile."""
    lines = ["# stage1 profiles (stage1 login / logout). Holds API tokens: keep it mode 0600.", ""]
    for name in sorted(profiles):
        lines.append(f"[profiles.{check_name(name)}]")
        for key, value in sorted(profiles[name].items()):
            if not re.fullmatch(r"[A-Za-z0-9_]+", key):
                raise ConfigError(f"bad config key {key!r}")
            lines.append(f"{key} = {_toml_string(value)}")
        lines.append("")
    return "\n".join(lines)


def write_profiles(profiles: dict[str, dict[str, str]], path: Path | None = None) -> Path:
    """Write the file atomically with mode 0600 (its directory 0700), whatever the umask."""
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(dump_profiles(profiles))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def save_profile(name: str, url: str, token: str, path: Path | None = None) -> Path:
    profiles = load_profiles(path)
    profiles[check_name(name)] = {"url": url.rstrip("/"), "token": token}
    return write_profiles(profiles, path)


def remove_profile(name: str, path: Path | None = None) -> bool:
    profiles = load_profiles(path)
    if profiles.pop(check_name(name), None) is None:
        return False
    write_profiles(profiles, path)
    return True


def resolve(*, url: str | None = None, token: str | None = None, profile: str | None = None,
            environ: dict[str, str] | None = None, default_file: Path | None = LOCAL_ENV_FILE) -> Resolved:
    """The URL and token by the precedence above (the module's docstring)."""
    env = dict(os.environ if environ is None else environ)
    explicit_token = token if token is not None else (env.get("STAGE1_TOKEN") or None)
    named = profile or env.get("STAGE1_PROFILE") or None
    if named is not None:
        check_name(named)
    tiers: list[tuple[str, str | None, str | None]] = [
        ("flag", url, None),
        ("env", env.get("STAGE1_URL") or env.get("STAGE1_GATEWAY_URL"), None),
    ]
    profiles = load_profiles(config_path(env))
    chosen = profiles.get(named or DEFAULT_PROFILE)
    if named is not None and chosen is None:
        raise ConfigError(f"no profile {named!r} in {config_path(env)} (stage1 login --profile {named} ...)")
    if chosen is not None:
        tiers.append((f"profile {named or DEFAULT_PROFILE}", chosen.get("url"), chosen.get("token")))
    file = env.get("STAGE1_ENV_FILE") or (str(default_file) if default_file and default_file.is_file() else "")
    if file and Path(file).is_file():
        local = read_dotenv(file)
        tiers.append((f"local stack {file}", local.get("STAGE1_URL") or local.get("STAGE1_GATEWAY_URL"),
                      local.get("STAGE1_TOKEN")))
    for source, tier_url, tier_token in tiers:
        if tier_url:
            return Resolved(tier_url.rstrip("/"), explicit_token if explicit_token is not None else (tier_token or ""),
                            source)
    return Resolved(DEFAULT_URL, explicit_token or "", "default")


def config_from_env(environ: dict[str, str] | None = None,
                    default_file: Path | None = LOCAL_ENV_FILE) -> tuple[str, str]:
    """(url, token) by the precedence above, without a flag (kept for callers of the older name)."""
    resolved = resolve(environ=environ, default_file=default_file)
    return resolved.url, resolved.token
