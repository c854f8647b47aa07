"""The one place cinerec writes files and folders: atomically, and never over what it
did not write.

* `atomic_file(path)` yields a temporary path beside ``path``; when the block ends
  normally the file is renamed onto ``path`` (``os.replace``), otherwise removed.
  `write_bytes` / `write_text` / `write_json` are shorthands.
* `atomic_dir(path, ...)` yields a temporary folder beside ``path`` to fill, then
  installs it. A missing ``path`` is a plain rename. An existing one is swapped in one
  step (Linux ``renameat2(RENAME_EXCHANGE)``), so at every instant ``path`` holds either
  the complete old folder or the complete new one; the old one is then deleted. Where
  the exchange is not available (other systems, some file systems) the old folder is
  renamed aside first and, if the process dies between the two renames, put back by
  `recover` on the next write or load.
* `check_target(path, owned, overwrite)` is the safety rule, also callable before long
  work (training) so a bad ``--out`` fails at once: a missing path or an empty folder
  may be written; a folder that ``owned(path)`` recognises (e.g. an artifact with its
  manifest) may be replaced only with ``overwrite``; anything else (a file, a folder
  cinerec did not write, the current directory, a symbolic link) is refused.
* Temporaries are named ``.NAME.cinerec-tmp-PID-TOKEN``; `clean_stale` removes those of
  processes that no longer run (a ``kill -9`` mid-write), and every write calls it on
  its folder.

Fault injection for tests: when ``$CINEREC_FAULT_AT`` names a point (``before-exchange``,
``after-exchange``, ``between-renames``, ``dir-filled``) the process kills itself
(SIGKILL) there, so a test can check what a kill at that instant leaves on disk.
``$CINEREC_NO_EXCHANGE=1`` forces the two-rename fallback.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import secrets
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from cinerec.errors import UnsafeTarget

_TMP = "cinerec-tmp"
_OLD = "cinerec-old"
_TEMP_RE = re.compile(rf"^\.(?P<name>.+)\.(?P<kind>{_TMP}|{_OLD})-(?P<pid>\d+)-[0-9a-f]+$")
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100

Owned = Callable[[Path], bool]


# ---- fault injection --------------------------------------------------------------------
def fault_point(name: str) -> None:
    """Kill this process (SIGKILL, like ``kill -9``) if ``$CINEREC_FAULT_AT`` is ``name``."""
    if os.environ.get("CINEREC_FAULT_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


# ---- names ------------------------------------------------------------------------------
def _temp_sibling(path: Path, kind: str = _TMP) -> Path:
    return path.parent / f".{path.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's live process
        return True
    return True


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def clean_stale(folder: Path) -> list[Path]:
    """Remove temporaries in ``folder`` left by dead processes; put back an old folder
    whose replacement never arrived (see `recover`). Returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _TEMP_RE.match(p.name)
        if m is None or _alive(int(m.group("pid"))):
            continue
        target = p.parent / m.group("name")
        if m.group("kind") == _OLD and not target.exists():
            with contextlib.suppress(OSError):
                os.rename(p, target)
                continue
        _remove(p)
        removed.append(p)
    return removed


def recover(path: Path) -> bool:
    """If ``path`` is missing but a dead writer's renamed-aside old folder exists, move it
    back (the two-rename fallback's window). True when something was restored."""
    path = Path(path)
    if path.exists() or not path.parent.is_dir():
        return False
    for p in path.parent.glob(f".{path.name}.{_OLD}-*"):
        m = _TEMP_RE.match(p.name)
        if m and m.group("name") == path.name and not _alive(int(m.group("pid"))):
            with contextlib.suppress(OSError):
                os.rename(p, path)
                return True
    return False


# ---- files ------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path; rename it onto ``path`` when the block succeeds."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        raise UnsafeTarget(f"{path} is a folder; cinerec will not replace it with a file")
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path.parent)
    tmp = _temp_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    return write_text(path, json.dumps(obj, indent=indent, default=str, allow_nan=False))


# ---- folders ----------------------------------------------------------------------------
def check_target(path: str | Path, owned: Owned | None = None, overwrite: bool = False) -> None:
    """Raise `UnsafeTarget` unless ``path`` may be (re)written as a folder (module doc)."""
    path = Path(path)
    if path.is_symlink():
        raise UnsafeTarget(
            f"{path} is a symbolic link; give the real folder (cinerec will not replace a link)"
        )
    if not path.exists():
        return
    if not path.is_dir():
        raise UnsafeTarget(
            f"{path} is a file, not a folder cinerec wrote; choose another output path "
            "(cinerec never deletes files it did not write)"
        )
    resolved, cwd = path.resolve(), Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise UnsafeTarget(
            f"{path} is the current directory or one above it; choose a new folder for the output"
        )
    if not any(path.iterdir()):
        return
    if owned is not None and owned(path):
        if overwrite:
            return
        raise UnsafeTarget(
            f"{path} already holds a cinerec artifact; pass --force (overwrite=True) to replace it"
        )
    raise UnsafeTarget(
        f"{path} is a non-empty folder that cinerec did not write; choose another output path "
        "(cinerec never deletes folders it did not write)"
    )


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (Linux renameat2). False when unsupported."""
    if os.environ.get("CINEREC_NO_EXCHANGE") == "1":
        return False
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


@contextlib.contextmanager
def atomic_dir(
    path: str | Path,
    *,
    owned: Owned | None = None,
    overwrite: bool = False,
    if_exists: Literal["replace", "keep"] = "replace",
) -> Iterator[Path]:
    """Yield an empty temporary folder; install it at ``path`` when the block succeeds.

    ``if_exists="replace"`` applies `check_target` (before and again right before the
    swap); ``"keep"`` leaves an existing ``path`` alone and discards the new folder (for
    caches, where a concurrent writer's entry is as good as ours).
    """
    path = Path(path)
    if if_exists == "replace":
        check_target(path, owned, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path.parent)
    recover(path)
    tmp = _temp_sibling(path)
    tmp.mkdir()
    try:
        yield tmp
        fault_point("dir-filled")
        _install(tmp, path, owned, overwrite, if_exists)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _install(tmp: Path, path: Path, owned: Owned | None, overwrite: bool, if_exists: str) -> None:
    if not path.exists() and not path.is_symlink():
        try:
            os.rename(tmp, path)
            return
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            # Somebody created it meanwhile: treat as existing.
    if if_exists == "keep":
        shutil.rmtree(tmp, ignore_errors=True)
        return
    check_target(path, owned, overwrite)
    fault_point("before-exchange")
    if _exchange(tmp, path):
        fault_point("after-exchange")
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old folder
        return
    old = _temp_sibling(path, _OLD)
    os.rename(path, old)
    fault_point("between-renames")
    os.rename(tmp, path)
    shutil.rmtree(old, ignore_errors=True)
