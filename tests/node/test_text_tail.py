"""The text tail both runners share: what a client sees of the tokens, and why it ends."""

from __future__ import annotations

from app.node.engine.tail import TextTail
from app.node.engine.types import Delta, Finished, Item


class Client:
    """What the consumer of a stream receives, as the engine emits it."""

    def __init__(self) -> None:
        self.items: list[Item | BaseException] = []

    def emit(self, item: Item | BaseException) -> None:
        self.items.append(item)

    @property
    def text(self) -> str:
        return "".join(i.text for i in self.items if isinstance(i, Delta))


def feed(tail: TextTail, *pieces: bytes) -> list[str | None]:
    """Each piece as one generated token; what `add` said after each."""
    return [tail.add(p) for p in pieces]


def test_without_stops_each_token_shows_at_once() -> None:
    client = Client()
    tail = TextTail((), 100, client.emit)
    assert feed(tail, b"Hello", b",", b" world") == [None, None, None]
    assert [i.text for i in client.items if isinstance(i, Delta)] == ["Hello", ",", " world"]
    assert tail.finish("stop", 7) == Finished("stop", 7, 3)
    assert client.text == "Hello, world"


def test_a_stop_string_split_across_tokens_ends_the_answer_and_never_shows() -> None:
    client = Client()
    tail = TextTail(("</end>",), 100, client.emit)
    assert feed(tail, b"The answer is 4", b".</", b"en") == [None, None, None]
    assert "<" not in client.text  # the start of the stop string is held back
    assert tail.add(b"d> and more") == "stop"
    done = tail.finish("stop", 12)
    assert client.text == "The answer is 4."
    assert done == Finished("stop", 12, 4)


def test_held_back_text_is_released_when_the_stop_string_does_not_complete() -> None:
    client = Client()
    tail = TextTail(("STOP",), 100, client.emit)
    tail.add(b"a S")
    tail.add(b"T")
    assert client.text == "a "  # "ST" may still become "STOP"
    assert tail.add(b"ORM and rain") is None
    assert client.text.startswith("a STORM")  # not a stop after all: shown, nothing lost
    tail.finish("length", 3)
    assert client.text == "a STORM and rain"


def test_text_that_cannot_begin_a_stop_string_shows_at_once() -> None:
    # A chat's template stop ("<|im_end|>", 10 characters) held the first words back until
    # 9 more characters came: the first token's time was a token or two late.
    client = Client()
    tail = TextTail(("<|im_end|>", "</s>"), 100, client.emit)
    tail.add(b"Hi")
    assert client.text == "Hi"
    tail.add(b" there<|")
    assert client.text == "Hi there"  # "<|" may begin "<|im_end|>": held
    assert tail.add(b"im_end|>") == "stop"
    tail.finish("stop", 3)
    assert client.text == "Hi there"


def test_the_earliest_of_several_stop_strings_wins() -> None:
    client = Client()
    tail = TextTail(("\n\n", "User:", ""), 100, client.emit)
    assert tail.add(b"Sure. User: hi\n\nmore") == "stop"
    tail.finish("stop", 1)
    assert client.text == "Sure. "


def test_a_character_split_across_tokens_arrives_whole() -> None:
    client = Client()
    tail = TextTail((), 100, client.emit)
    euro = "€".encode()  # three bytes
    feed(tail, b"costs 5" + euro[:1], euro[1:2], euro[2:] + b"!")
    tail.finish("stop", 1)
    assert client.text == "costs 5€!"
    assert "\ufffd" not in client.text
    assert all("\ufffd" not in i.text for i in client.items if isinstance(i, Delta))


def test_a_character_cut_by_the_end_shows_as_a_replacement() -> None:
    client = Client()
    tail = TextTail((), 2, client.emit)
    assert feed(tail, b"ok", "€".encode()[:2]) == [None, "length"]
    done = tail.finish("length", 4)
    assert client.text == "ok\ufffd"
    assert done == Finished("length", 4, 2)


def test_the_token_limit_ends_the_answer_with_length() -> None:
    client = Client()
    tail = TextTail(("never",), 3, client.emit)
    assert feed(tail, b"one ", b"two ", b"three") == [None, None, "length"]
    done = tail.finish("length", 9)
    assert client.text == "one two three"  # the held-back tail goes out at the end
    assert done == Finished("length", 9, 3)


def test_a_stop_string_on_the_last_allowed_token_is_a_stop() -> None:
    client = Client()
    tail = TextTail(("!",), 2, client.emit)
    assert feed(tail, b"hi", b"!") == [None, "stop"]
    assert tail.finish("stop", 1) == Finished("stop", 1, 2)
    assert client.text == "hi"


def test_end_of_generation_passes_its_reason_and_the_count_through() -> None:
    client = Client()
    tail = TextTail(("xyz",), 10, client.emit)
    feed(tail, b"a", b"bx")  # "x" held back: it could start "xyz"
    done = tail.finish("stop", 5)  # the model's end-of-generation token, not counted
    assert done == Finished("stop", 5, 2)
    assert client.text == "abx"
    assert not any(isinstance(i, Finished) for i in client.items)  # the runner sends it
