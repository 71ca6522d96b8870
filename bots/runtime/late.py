"""An attribute a bot sets once it has what it needs (in ``start``, or a feature's ``attach``).

Typed as set, so code that runs after ``start`` uses it without a None check each time; read
before it is set, it raises an error that names it instead of failing later on a None.

    class MemoBot(BotApp):
        store = Late[MemoStore]()

        async def start(self, bot: Bot) -> None:
            self.store = MemoStore(bot.storage)
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class Late(Generic[T]):
    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name
        self._slot = f"_late_{name}"

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> Late[T]: ...
    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> T: ...

    def __get__(self, obj: object | None, objtype: type | None = None) -> Late[T] | T:
        if obj is None:
            return self
        try:
            value: T = vars(obj)[self._slot]
        except KeyError:
            raise RuntimeError(f"{type(obj).__name__}.{self._name} is read before it is set") from None
        return value

    def __set__(self, obj: object, value: T) -> None:
        vars(obj)[self._slot] = value

    def is_set(self, obj: Any) -> bool:
        """For cleanup that also runs when ``start`` did not (``Class.attr.is_set(self)``)."""
        return self._slot in vars(obj)
