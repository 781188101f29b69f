"""Turn a plain function into an Ansible filter: its own error type becomes AnsibleFilterError,
so a bad catalog or inventory fails the task with our message instead of a traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


def filter_shim(func: Callable[..., Any], *errors: type[Exception]) -> Callable[..., Any]:
    from ansible.errors import AnsibleFilterError

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except errors as exc:
            raise AnsibleFilterError(str(exc)) from exc

    return wrapper
