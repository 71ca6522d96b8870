"""(being written: refuses everything until then)"""

from .result import Refusal


async def sanitize(job):
    raise Refusal("sanitizer.refused.policy")


async def warm(engine):
    pass
