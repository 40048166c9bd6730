"""`/v1/chat/completions` on the node: the prompt, then `n` choices, whole or streamed.

Everything that can refuse a request (the body, the tools, the images, a prompt beyond the
context) is checked before a stream starts, so a streamed request that cannot run gets the
same 400 as its non-streamed twin instead of a 200 and an error event. Each choice is its own
sequence in the engine (side by side where the batched engine has free slots), with its own
seed when the request names one, its own reasoning split and tool-call reading.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from app.core.errors import BadRequest
from app.node import openai_params as params
from app.node import reasoning, tools
from app.node.engine.batched import BatchedRunner
from app.node.engine.pool import Runner
from app.node.engine.types import Delta, Finished, Item, Sampling, TokenLogprob
from app.node.logprobs import chat_content, chat_logprobs
from app.node.replies import (
    MARK,
    Call,
    Generation,
    JsonReply,
    Reply,
    StreamReply,
    check_fits,
    choice_samplings,
    collect,
    event,
    text_events,
    timings,
    usage,
)


async def chat(call: Call) -> Reply:
    """`/v1/chat/completions`."""
    req = params.chat_request(call.body)
    tool_plan = tools.plan(req.tools, req.tool_choice, req.parallel_tool_calls)
    if req.images and req.model in call.models.ready() and not call.models.projector(req.model):
        raise not_vision(req.model)  # before loading a model only to refuse the request
    runner = await call.models.runner_for(req.model)
    grammar = tool_plan.grammar or req.sampling.grammar
    constrained = bool(grammar or req.sampling.json_schema)
    sampling = Sampling(
        **{
            **req.sampling.__dict__,
            "json_schema": tool_plan.schema or req.sampling.json_schema,
            "grammar": grammar,
        }
    )
    generations: list[Generation] = []
    prompt = ""
    for choice_sampling in choice_samplings(sampling, req.n):
        if req.images:  # the images' chunks are used up by one sequence: one set per choice
            tokens, template_stops, prompt, media = await _image_prompt(
                call, req, runner, tool_plan
            )
        else:
            media = None
            if not generations:
                tokens, template_stops, prompt = await runner.chat_prompt(
                    req.messages, tool_plan.template_tools, req.tool_choice, req.template_kwargs
                )
        check_fits(runner, len(tokens), "messages")
        # A grammar ends the answer itself; the template's stop text could then only come
        # up inside a JSON string, and stopping there would cut the JSON.
        stops = () if constrained else template_stops
        stop = choice_sampling.stop + stops
        generations.append(Generation(tokens, _with(choice_sampling, stop=stop), media))
    # Under a grammar its text is the answer, even where the template opened a thought.
    reasoning_format, prompt = ("none", "") if constrained else (req.reasoning_format, prompt)
    answer = _Answer(req, tool_plan, reasoning_format, prompt)
    if req.stream:
        streams = [_ChoiceStream(answer, i) for i in range(req.n)]
        opening = [s.chunk({"role": "assistant", "content": ""}) for s in streams]
        return StreamReply(
            runner,
            generations,
            [event(o) for o in opening],
            lambda i, item: streams[i].encode(item),
            answer.usage_events,
        )
    results = await collect(call, runner, generations)
    choices = [answer.choice(i, r.text, r.logprobs, r.done) for i, r in enumerate(results)]
    return JsonReply(
        {
            "id": answer.ident,
            "object": "chat.completion",
            "created": answer.created,
            "model": req.model,
            "system_fingerprint": None,
            "choices": choices,
            "usage": usage([r.done for r in results]),
            "timings": timings(results[0].done),  # llama-server's, of the (first) choice
        }
    )


def _with(sampling: Sampling, **changes: Any) -> Sampling:
    return Sampling(**{**sampling.__dict__, **changes})


class _Answer:
    """What every choice of one answer shares: its id, the request, how to read the text."""

    def __init__(
        self,
        req: params.ChatRequest,
        plan: tools.ToolPlan,
        reasoning_format: str,
        prompt: str,
    ) -> None:
        self.req = req
        self.plan = plan
        self.reasoning_format = reasoning_format
        self.prompt = prompt
        self.ident = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.logprobs = req.sampling.logprobs is not None

    def choice(
        self, index: int, whole: str, entries: list[TokenLogprob], done: Finished
    ) -> dict[str, Any]:
        """One choice of a whole answer."""
        think, text = reasoning.split_all(self.reasoning_format, self.prompt, whole)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        finish = done.finish_reason
        calls = self.plan.calls(text) if self.plan.expect_calls else None
        if calls:
            message = {"role": "assistant", "content": None, "tool_calls": calls}
            finish = "length" if finish == "length" else "tool_calls"
        if think:  # as llama.cpp's server: the field only when the model reasoned
            message["reasoning_content"] = think
        choice: dict[str, Any] = {
            "index": index,
            "message": message,
            "logprobs": chat_logprobs(entries if self.logprobs else None),
            "finish_reason": finish,
        }
        if finish == "stop" and done.stop in self.req.sampling.stop:
            choice["stop_reason"] = done.stop  # the client's stop string that ended it (vLLM's)
        return choice

    def usage_events(self, done: list[Finished]) -> list[bytes]:
        """The usage chunk after every choice ended, when the client asked for it."""
        if not self.req.include_usage:
            return []
        body = {
            "id": self.ident,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.req.model,
            "choices": [],
            "usage": usage(done),
        }
        return [event(body)]


class _ChoiceStream:
    """One choice of a streamed answer: its chunks, from its items as they come."""

    def __init__(self, answer: _Answer, index: int) -> None:
        self.answer = answer
        self.index = index
        self.split = reasoning.splitter(answer.reasoning_format, answer.prompt)
        self.held: str | None = ""  # text that may still turn out to be a tool call
        self.entries: list[TokenLogprob] = []  # logprobs not sent yet
        self.content = text_events(self.chunk({"content": MARK}))
        self.thought = text_events(self.chunk({"reasoning_content": MARK}))

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        """A chunk of this choice."""
        a = self.answer
        choice = {"index": self.index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {
            "id": a.ident,
            "object": "chat.completion.chunk",
            "created": a.created,
            "model": a.req.model,
            "system_fingerprint": None,
            "choices": [choice],
        }

    def _text(self, key: str, text: str) -> bytes:
        """A content or reasoning chunk; with logprobs, it carries those not sent yet."""
        if not self.answer.logprobs:
            return (self.content if key == "content" else self.thought)(text)
        chunk = self.chunk({key: text})
        chunk["choices"][0]["logprobs"] = {"content": chat_content(self.entries)}
        self.entries = []
        return event(chunk)

    def _answer_text(self, text: str) -> list[bytes]:
        if self.answer.plan.expect_calls and self.held is not None:
            self.held += text
            if tools.might_be_call(self.held):
                return []
            text, self.held = self.held, None  # plain text after all: stream it
        return [self._text("content", text)] if text else []

    def encode(self, item: Item) -> list[bytes]:
        """The events of one generated item."""
        if isinstance(item, Delta):
            self.entries += item.logprobs
            think, text = self.split.feed(item.text)
        else:
            think, text = self.split.end()
        events = [self._text("reasoning_content", think)] if think else []
        events += self._answer_text(text)
        if isinstance(item, Delta):
            return events
        return events + self._end(item)

    def _end(self, done: Finished) -> list[bytes]:
        finish = done.finish_reason
        events = []
        if self.held:
            calls = self.answer.plan.calls(self.held)
            if calls:
                delta = [{"index": i, **c} for i, c in enumerate(calls)]
                last_calls = self.chunk({"tool_calls": delta})
                if self.answer.logprobs:
                    last_calls["choices"][0]["logprobs"] = {"content": chat_content(self.entries)}
                    self.entries = []
                events.append(event(last_calls))
                finish = "length" if finish == "length" else "tool_calls"
            else:
                events.append(self._text("content", self.held))
        last = self.chunk({}, finish) | {"timings": timings(done)}  # where llama-server has it
        if self.answer.logprobs and self.entries:
            last["choices"][0]["logprobs"] = {"content": chat_content(self.entries)}
        if finish == "stop" and done.stop in self.answer.req.sampling.stop:
            last["choices"][0]["stop_reason"] = done.stop  # which stop, as vLLM says it
        events.append(event(last))
        return events


async def _image_prompt(
    call: Call, req: params.ChatRequest, runner: Runner, tool_plan: tools.ToolPlan
) -> tuple[list[int], tuple[str, ...], str, Any]:
    """A chat with images through the model's projector: (placeholder tokens as many as the
    prompt takes, the template's stops, the prompt text, the prompt); 400 `model_not_vision`
    without one."""
    projector = call.models.projector(req.model)
    if projector is None or not isinstance(runner, BatchedRunner):
        raise not_vision(req.model)
    media, stops, prompt = await runner.media_prompt(
        req.messages,
        list(req.images),
        projector,
        tool_plan.template_tools,
        req.tool_choice,
        req.template_kwargs,
    )
    return [-1] * media.n_tokens, stops, prompt, media  # -1: no cached prompt shares a prefix


def not_vision(model: str) -> BadRequest:
    """The 400 for images sent to a model that cannot read them."""
    return BadRequest(
        f"the model '{model}' does not take images (it has no Vision capability: no image "
        "projector); pick a model with Vision or send text only",
        param="messages",
        code="model_not_vision",
    )
