"""Ranking allocates millions of small objects, none in a reference cycle."""

import gc
from collections.abc import Callable
from functools import wraps


def without_cycle_collection(function: Callable) -> Callable:
    """Ranking makes millions of small objects, none in a reference cycle; the cyclic garbage
    collector would otherwise rescan every live object again and again while they are made."""

    @wraps(function)
    def wrapper(*args, **kwargs):
        if not gc.isenabled():
            return function(*args, **kwargs)
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            gc.enable()

    return wrapper
