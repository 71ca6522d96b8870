"""The memo pad bot (メモ帳ボット): ``python -m bots.memo --config bots.yaml``."""
