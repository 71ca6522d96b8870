"""Who may manage what the polls bot made (close, remind, export, decide, mark a task done for
everyone, remind the unread): the person who made it, or a room moderator."""

from __future__ import annotations

from bots.runtime import Bot, Context

from .store import Group, PollStore

#: who may manage a group, task or message besides the person who made it
MANAGER_POWER_LEVEL = 50


async def is_manager(bot: Bot, ctx: Context, owner: str | None) -> bool:
    """The sender made it (``owner``) or has at least MANAGER_POWER_LEVEL in the room (asked now)."""
    return ctx.sender == owner or await bot.power_level(ctx.room_id, ctx.sender) >= MANAGER_POWER_LEVEL


async def may_manage(bot: Bot, ctx: Context, group: Group) -> bool:
    """:func:`is_manager` of ``group``; the sender is told why not."""
    if await is_manager(bot, ctx, group.created_by):
        return True
    await ctx.reply("polls.not_yours", number=group.number, level=MANAGER_POWER_LEVEL)
    return False


async def group_named(store: PollStore, ctx: Context, number: int) -> Group | None:
    """Group ``number`` of the room; None once the sender was told there is none."""
    group = store.group_by_number(ctx.room_id, number)
    if group is None:
        await ctx.reply("polls.no_such_group", number=number)
    return group
