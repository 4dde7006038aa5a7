"""`apps/<key>/channels.toml`: the app's channels (dist-tags), each naming a version.

```toml
stable = "1.1.0"
beta = "2.0.0-beta.1"
```

Written by hand and committed with the source. Each build compares it with the
channels the release log holds for the app and logs a `channel` entry for every
channel that is new, moved or removed (builder/channelplan.py).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from appshelf.errors import InputFileError, InvalidVersionError, Problem, SourceTreeError
from appshelf.inputfile import read_input_file
from appshelf.versions import parse_version
from appshelf.versions.channels import channel_name_problem

CHANNELS_FILE = "channels.toml"
MAX_CHANNELS_BYTES = 64 * 1024
MAX_CHANNELS = 32


def read_channels(app_folder: Path, root: Path) -> dict[str, str]:
    """The app's channels, name -> version (empty when there is no channels.toml).

    Raises:
        SourceTreeError: not a regular file, too large, not TOML, a bad name or version.
    """
    path = app_folder / CHANNELS_FILE
    where = path.relative_to(root).as_posix() if root in path.parents else str(path)
    if not path.exists() and not path.is_symlink():
        return {}
    try:
        raw, _, _ = read_input_file(path, MAX_CHANNELS_BYTES)
        data = tomllib.loads(raw.decode("utf-8"))
    except InputFileError as exc:
        raise SourceTreeError([Problem(where, "", str(exc))]) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise SourceTreeError([Problem(where, "", f"invalid TOML ({exc})")]) from None
    problems = []
    if len(data) > MAX_CHANNELS:
        problems.append(Problem(where, "", f"at most {MAX_CHANNELS} channels"))
    for name, version in data.items():
        problem = channel_name_problem(name)
        if problem is None and not isinstance(version, str):
            problem = f'must be a version string, like {name} = "1.2.3"'
        elif problem is None:
            try:
                parse_version(version)
            except InvalidVersionError as exc:
                problem = str(exc)
        if problem is not None:
            problems.append(Problem(where, name, problem))
    if problems:
        raise SourceTreeError(problems)
    return {name: str(version) for name, version in sorted(data.items())}
