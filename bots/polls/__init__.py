"""The polls bot (投票ボット): surveys, schedule coordination, tasks, safety checks, read reminders."""
