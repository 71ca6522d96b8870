"""The file sanitization bot (無害化ボット) and its engine (``bots/sanitizer/engine``)."""
