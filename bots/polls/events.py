"""Native poll events as Element renders them (MSC3381, unstable names), and reading them back.

The bot sends the unstable ``org.matrix.msc3381.poll.*`` types (what Element Web/X render) and
accepts the stable ``m.poll.*`` ones on input too (other clients may send them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

START_TYPES = ("org.matrix.msc3381.poll.start", "m.poll.start")
RESPONSE_TYPES = ("org.matrix.msc3381.poll.response", "m.poll.response")
END_TYPES = ("org.matrix.msc3381.poll.end", "m.poll.end")
START, RESPONSE, END = START_TYPES[0], RESPONSE_TYPES[0], END_TYPES[0]
TEXT = "org.matrix.msc1767.text"
DISCLOSED, UNDISCLOSED = "org.matrix.msc3381.poll.disclosed", "org.matrix.msc3381.poll.undisclosed"
MAX_ANSWERS = 20


@attrs.frozen
class Answer:
    id: str
    text: str


def start_content(question: str, answers: Sequence[Answer], disclosed: bool = True,
                  max_selections: int = 1) -> dict[str, Any]:
    fallback = question + "\n" + "\n".join(f"{i}. {a.text}" for i, a in enumerate(answers, 1))
    return {
        TEXT: fallback,
        "body": fallback,  # clients that know no polls show the question and the choices
        START: {
            "kind": DISCLOSED if disclosed else UNDISCLOSED,
            "max_selections": max_selections,
            "question": {TEXT: question, "body": question},
            "answers": [{"id": a.id, TEXT: a.text} for a in answers],
        },
    }


def end_content(poll_event_id: str, text: str) -> dict[str, Any]:
    return {TEXT: text, "body": text, "m.relates_to": {"rel_type": "m.reference", "event_id": poll_event_id},
            END: {}}


def response_content(poll_event_id: str, answer_ids: Sequence[str]) -> dict[str, Any]:
    """What a client sends to vote (the tests vote like Element)."""
    return {"m.relates_to": {"rel_type": "m.reference", "event_id": poll_event_id},
            RESPONSE: {"answers": list(answer_ids)}}


def poll_of(event: dict[str, Any]) -> str | None:
    """The poll a response or end event refers to (``m.reference``), or None."""
    relates = (event.get("content") or {}).get("m.relates_to")
    if isinstance(relates, dict) and relates.get("rel_type") == "m.reference":
        target = relates.get("event_id")
        return target if isinstance(target, str) else None
    return None


def response_answers(event: dict[str, Any]) -> list[str] | None:
    """The answer ids of a response; None when it is not a valid vote (counts as no vote, a
    "spoiled" response that still replaces the sender's earlier one)."""
    content = event.get("content") or {}
    body = content.get(RESPONSE) or content.get("m.poll.response") or content.get("m.selections")
    answers = body.get("answers") if isinstance(body, dict) else body
    if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
        return None
    return answers
