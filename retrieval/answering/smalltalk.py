"""Small talk and questions about the bot, told apart from questions about the news by a phrase model.

The model is explicit and small: a message is normalised (accents and punctuation dropped, lower
case, single spaces) and is small talk when all of it is a run of the phrases below, with a few
filler words ("please", "bot", "there", "so much"). Each phrase list is one intent with its own
reply: greeting, thanks, acknowledgement, farewell, identity ("who are you"), abilities ("what can
you do") and help. A question that merely opens like small talk ("Hi, who opened the bridge?",
"Thanks! And how much did it cost?", "Can you tell me who won?") is a question: `strip_opening`
takes the opening off and the rest is answered from the articles.
"""

from __future__ import annotations

import re
import unicodedata

_GREETING = """hi | hello | hey | hi there | hello there | hey there | hiya | howdy | yo | greetings | hallo |
hola | good morning | good afternoon | good evening | good day | morning | evening | what s up | whats up |
sup | how are you | how are you doing | how is it going | how s it going | hows it going | how do you do |
nice to meet you | pleased to meet you"""
_THANKS = """thanks | thank you | thx | ty | cheers | many thanks | much appreciated | appreciated |
thanks a lot | thanks a bunch | thank you very much | thank you so much | thanks so much | ta"""
_ACK = """ok | okay | k | cool | great | nice | perfect | awesome | got it | i see | alright | all right | good |
very good | fine | sure | wow | interesting | noted | understood"""
_FAREWELL = """bye | goodbye | good bye | bye bye | see you | see you later | see ya | cya | good night | farewell |
take care | later"""
_IDENTITY = """who are you | what are you | what is your name | what s your name | whats your name |
who am i talking to | are you a bot | are you a robot | are you human | are you a person | are you real |
who made you | who built you | who created you | introduce yourself | tell me about yourself"""
_ABILITY = """what can you do | what do you do | what can i ask | what can i ask you | what should i ask |
what do you know | what do you know about | what questions can i ask | how does this work | how do you work |
how do i use this | how do i use you | what are you for | what are you good at | what is this"""
_HELP = """help | help me | i need help | can you help | can you help me | please help | commands | usage |
how to use | start | menu"""
# Fillers that may stand anywhere in small talk without making it a question.
_FILLERS = "please | pls | bot | qabot | there | again | so | and | then | very much | so much | a lot | you | all"
# Openings that are taken off a question before it is answered (greetings, thanks, "tell me").
_POLITE = """can you tell me | could you tell me | please tell me | tell me | do you know | i want to know |
i would like to know | i d like to know | i wonder | quick question | question"""

INTENTS = {
    "greeting": _GREETING,
    "thanks": _THANKS,
    "ack": _ACK,
    "farewell": _FAREWELL,
    "identity": _IDENTITY,
    "ability": _ABILITY,
    "help": _HELP,
}


def _alternation(*lists: str) -> str:
    phrases = {" ".join(p.split()) for text in lists for p in text.split("|") if p.strip()}
    return "|".join(re.escape(p).replace(r"\ ", " ") for p in sorted(phrases, key=len, reverse=True))


_PHRASES = {intent: re.compile(rf"(?:{_alternation(text)})") for intent, text in INTENTS.items()}
_ANY = _alternation(*INTENTS.values(), _FILLERS)
_WHOLE = re.compile(rf"^(?:(?:{_ANY})(?: |$))+$")
# An acknowledgement opens a question only with a stop after it ("Great, ..." but not "Great Britain").
_OPENING = re.compile(
    rf"^\W*(?:(?:(?:{_alternation(_GREETING, _THANKS, _POLITE, 'please | pls | bot | qabot')})\b"
    rf"|(?:{_alternation(_ACK)})(?=\s*[,!.;:]))[\s,!.:;\-–—]*)+",
    re.IGNORECASE,
)


def normalise(text: str) -> str:
    """Lower case, accents dropped, apostrophes joined, anything but letters and digits a space."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"['’]", " ", text)
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


def small_talk(message: str) -> str | None:
    """The intent of a message that is all small talk (one of `INTENTS`), else None.

    Where phrases of several intents meet ("Hi, what can you do?"), the most telling one wins:
    help, abilities and identity before farewell, thanks and greeting.
    """
    text = normalise(message)
    if not text or not _WHOLE.match(text):
        return None
    for intent in ("help", "ability", "identity", "farewell", "thanks", "greeting", "ack"):
        if _PHRASES[intent].search(text):
            return intent
    return None


def strip_opening(question: str) -> str:
    """The question without a small-talk opening ("Hi, who opened the bridge?" → "who opened the
    bridge?"); the question itself when nothing is left after it."""
    rest = _OPENING.sub("", question, count=1).strip()
    return rest if re.search(r"\w", rest) else question


def reply_text(intent: str, example: str = "") -> str:
    """The bot's short reply to small talk of `intent`, with a hint (an example question when given)."""
    hint = f" Try: {example}" if example else ""
    replies = {
        "greeting": f"Hello! Ask me a question about the news articles I have read.{hint}",
        "thanks": "You're welcome! Ask me another question about the news whenever you like.",
        "ack": "Ask me another question about the news whenever you like.",
        "farewell": "Goodbye! Come back with more questions about the news.",
        "identity": f"I am qabot: I answer questions in English from the news articles I have read.{hint}",
        "ability": (
            "I answer questions in English from the news articles I have read, and show the sentence the "
            f"answer comes from; follow-up questions stay on the same article.{hint}"
        ),
        "help": (
            "Ask a question about the news in English, e.g. who, what, when or how much; follow-ups like "
            f"“How much did it cost?” stay on the same article.{hint}"
        ),
    }
    return replies[intent]
