"""A JSON schema as a GBNF grammar whose every sentence is JSON that validates against it.

It covers the subset OpenAI documents for structured outputs: `type` (one or a list),
objects (`properties`, `required`, `additionalProperties`), arrays (`items`, `minItems`,
`maxItems`), strings (escapes only as JSON allows, never a raw control character;
`minLength`, `maxLength`, `pattern`, `format` date / time / date-time / uuid), integers and
numbers inside `minimum` / `maximum` / `exclusiveMinimum` / `exclusiveMaximum`, `enum`,
`const`, `anyOf` / `oneOf`, `allOf` (merged), `nullable`, `$ref` into `$defs` /
`definitions` / the root. A keyword that would constrain the answer in a way the grammar
cannot promise is refused with BadRequest naming it, before any generation starts.
"""

from __future__ import annotations

import json

from app.core.errors import BadRequest
from app.core.wire import JsonValue
from app.node.grammar_ranges import integer_range, number_range, read_bound, whole_bound
from app.node.grammar_regex import FORMATS, UnsupportedPattern, pattern_grammar
from app.node.grammar_text import DEPENDS, PRIMITIVES, json_literal, literal, repeat

_REFUSED = (  # validation keywords the grammar cannot promise
    "not if then else patternProperties dependentRequired dependentSchemas dependencies "
    "contains minContains maxContains multipleOf propertyNames minProperties maxProperties "
    "prefixItems additionalItems unevaluatedItems $dynamicRef $recursiveRef"
).split()
SchemaObject = dict[str, JsonValue]


class _Builder:
    """Walks one schema, collecting named rules."""

    def __init__(self, root: SchemaObject, param: str, rules: dict[str, str]) -> None:
        self.root = root  # what `$ref`s point into
        self.param = param
        self.rules = rules  # shared by the builders of one grammar, so names stay unique
        self.refs: dict[str, str] = {}

    def fail(self, message: str, path: str) -> BadRequest:
        return BadRequest(f"JSON schema at {path or '#'}: {message}", param=self.param)

    def use(self, name: str) -> str:
        """Name a primitive rule (adding it and what it needs)."""
        if name not in self.rules:
            self.rules[name] = PRIMITIVES[name]
            for dep in DEPENDS.get(name, []):
                self.use(dep)
        return name

    def add(self, hint: str, body: str) -> str:
        """A new rule for `body`, named after `hint` (never `root` nor a primitive's name)."""
        base = "".join(c if c.isalnum() else "-" for c in hint).strip("-").lower() or "r"
        name, n = base, 1
        while name in self.rules or name in PRIMITIVES or name == "root":
            n += 1
            name = f"{base}-{n}"
        self.rules[name] = body
        return name

    def resolve(self, ref: str, path: str) -> JsonValue:
        if not ref.startswith("#"):
            raise self.fail(f"'$ref' {ref!r} is not a local reference (#/$defs/...)", path)
        node: JsonValue = self.root
        for part in [p for p in ref[1:].split("/") if p]:
            key = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                raise self.fail(f"'$ref' {ref!r} points at nothing", path)
        return node

    def visit(self, schema: JsonValue, path: str) -> str:
        """A GBNF expression for the JSON values `schema` accepts."""
        if schema is True or schema == {}:
            return self.use("value")
        if not isinstance(schema, dict):
            raise self.fail("a schema must be an object", path)
        for key in _REFUSED:
            if key in schema:
                raise self.fail(f"the keyword '{key}' is not supported", path)
        if schema.get("uniqueItems") is True:
            raise self.fail("the keyword 'uniqueItems' is not supported", path)
        ref = schema.get("$ref")
        if isinstance(ref, str):
            if ref not in self.refs:
                self.refs[ref] = self.add("ref-" + ref.rsplit("/", 1)[-1], "")
                target = self.resolve(ref, path)
                self.rules[self.refs[ref]] = self.visit(target, ref)
            return self.refs[ref]
        if "allOf" in schema:
            return self.visit(self.merged(schema, path), path)
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if options is not None:
                if not isinstance(options, list) or not options:
                    raise self.fail(f"'{key}' must be a non-empty list", path)
                if key == "oneOf" and not self.disjoint(options, path):
                    raise self.fail("'oneOf' branches may overlap (one value, two branches)", path)
                rest = {k: v for k, v in schema.items() if k != key}
                seqs = [
                    self.visit({**rest, **o} if isinstance(o, dict) else o, f"{path}/{key}/{i}")
                    for i, o in enumerate(options)
                ]
                return self.add(path.rsplit("/", 1)[-1] or "root", " | ".join(seqs))
        if "const" in schema:
            return json_literal(schema["const"])
        if "enum" in schema:
            values = schema["enum"]
            if not isinstance(values, list) or not values:
                raise self.fail("'enum' must be a non-empty list", path)
            return "(" + " | ".join(json_literal(v) for v in values) + ")"
        kind = schema.get("type")
        if isinstance(kind, list):
            kinds = [self.visit({**schema, "type": k}, path) for k in kind]
            return "(" + " | ".join(kinds) + ")"
        if schema.get("nullable") is True:
            plain = {k: v for k, v in schema.items() if k != "nullable"}
            return f"({self.visit(plain, path)} | {self.use('null')})"
        kind = kind if isinstance(kind, str) else _implied_type(schema)
        if kind == "object":
            return self.object(schema, path)
        if kind == "array":
            return self.array(schema, path)
        if kind == "string":
            return self.string(schema, path)
        if kind in ("integer", "number"):
            return self.number(schema, path, kind)
        if kind in ("boolean", "null"):
            return self.use(kind)
        if kind is None:
            return self.use("value")
        raise self.fail(f"'type' {kind!r} is not a JSON type", path)

    def disjoint(self, options: list[JsonValue], path: str) -> bool:
        """True when no value can match two of `options` (told apart by type, by const /
        enum values, or by a required property's const / enum), so `oneOf` is `anyOf`."""
        seen: list[tuple[set[str] | None, set[str] | None, dict[str, set[str]]]] = []
        for option in options:
            while isinstance(option, dict) and isinstance(option.get("$ref"), str):
                option = self.resolve(str(option["$ref"]), path)
            if not isinstance(option, dict):
                return False
            props = option.get("properties")
            required = option.get("required")
            tags = {
                name: values
                for name in (required if isinstance(required, list) else [])
                if isinstance(name, str) and isinstance(props, dict)
                for values in [_values(props.get(name))]
                if values is not None
            }
            kinds = _types(option.get("type"))
            listed = [option["const"]] if "const" in option else option.get("enum")
            if kinds is None and isinstance(listed, list):
                kinds = _types([_json_type(v) for v in listed])
            mine = (kinds, _values(option), tags)
            for other in seen:
                apart = [(mine[0], other[0]), (mine[1], other[1])] + [
                    (v, other[2][k]) for k, v in tags.items() if k in other[2]
                ]
                if not any(a is not None and b is not None and not a & b for a, b in apart):
                    return False
            seen.append(mine)
        return True

    def merged(self, schema: SchemaObject, path: str) -> SchemaObject:
        """`allOf` folded into one schema: properties and required united, other keywords
        taken when they agree and refused when they differ."""
        parts = schema["allOf"]
        if not isinstance(parts, list):
            raise self.fail("'allOf' must be a list", path)
        out: SchemaObject = {k: v for k, v in schema.items() if k != "allOf"}
        for part in parts:
            while isinstance(part, dict) and isinstance(part.get("$ref"), str):
                part = self.resolve(str(part["$ref"]), path)
            if not isinstance(part, dict):
                raise self.fail("'allOf' entries must be schemas", path)
            for key, value in part.items():
                old = out.get(key)
                if key == "properties" and isinstance(old, dict) and isinstance(value, dict):
                    out[key] = {**old, **value}
                elif key == "required" and isinstance(old, list) and isinstance(value, list):
                    out[key] = old + [v for v in value if v not in old]
                elif key in out and old != value and key not in ("description", "title"):
                    raise self.fail(f"'allOf' parts disagree on '{key}'", path)
                else:
                    out[key] = value
        return out

    def object(self, schema: SchemaObject, path: str) -> str:
        props = schema.get("properties") or {}
        required = schema.get("required") or []
        if not isinstance(props, dict) or not isinstance(required, list):
            raise self.fail("'properties' must be an object and 'required' a list", path)
        extra = schema.get("additionalProperties")
        ws = self.use("ws")
        if not props and not required:
            if extra is False or schema.get("unevaluatedProperties") is False:
                return '"{" ws "}"'
            value = self.visit(
                extra if isinstance(extra, dict) else {}, path + "/additionalProperties"
            )
            pair = f'{self.use("string")} ws ":" ws {value}'
            return self.add("map", f'"{{" ws ( {pair} ( ws "," ws {pair} )* ws )? "}}"')
        names = list(props) + [r for r in required if isinstance(r, str) and r not in props]
        values = [self.visit(props.get(n, {}), f"{path}/properties/{n}") for n in names]
        pairs = [f'{json_literal(n)} {ws} ":" {ws} {v}' for n, v in zip(names, values, strict=True)]
        # after[i]: the pairs from i on once one came before (each then starts with a comma);
        # first[i]: the pairs from i on when none came yet (never empty, so no doubled ws).
        hint = (path.rsplit("/", 1)[-1] or "root") + "-"
        after, first = "", ""
        for i in range(len(names) - 1, -1, -1):
            step = f'{ws} "," {ws} {pairs[i]} {after}'.strip()
            alone = self.add(hint + "pair", f"{pairs[i]} {after}".strip())
            if names[i] in required:
                first, after = alone, self.add(hint + "after", step)
            else:
                first = self.add(hint + "first", f"{alone} | {first}" if first else alone)
                # may be empty: this pair and the rest, or only the rest
                body = f"{step} | {after}" if after else f"({step})?"
                after = self.add(hint + "after", body)
        empty_ok = not any(n in required for n in names)
        inner = f"( {first} ws )?" if empty_ok else f"{first} ws"
        return self.add(hint + "object", f'"{{" ws {inner} "}}"')

    def array(self, schema: SchemaObject, path: str) -> str:
        items = schema.get("items", {})
        if isinstance(items, list):
            raise self.fail("'items' as a list (tuples) is not supported", path)
        lo = _count(schema, "minItems", 0, self, path) or 0
        hi = _count(schema, "maxItems", None, self, path)
        if hi is not None and hi < lo:
            raise self.fail("'maxItems' is below 'minItems'", path)
        self.use("ws")
        if hi == 0:
            return '"[" ws "]"'
        item = self.visit(items, path + "/items")
        more = repeat(
            f'( ws "," ws {item} )', max(lo - 1, 0), None if hi is None else hi - 1, self.add
        )
        seq = f"{item} {more} ws"
        body = f'"[" ws {seq} "]"' if lo > 0 else f'"[" ws ( {seq} )? "]"'
        return self.add((path.rsplit("/", 1)[-1] or "root") + "-array", body)

    def string(self, schema: SchemaObject, path: str) -> str:
        lo = _count(schema, "minLength", 0, self, path) or 0
        hi = _count(schema, "maxLength", None, self, path)
        pattern = schema.get("pattern")
        fmt = schema.get("format")
        if pattern is None and isinstance(fmt, str) and fmt in FORMATS:
            pattern = FORMATS[fmt]  # other formats are annotations, as JSON Schema has it
        if pattern is not None:
            if not isinstance(pattern, str):
                raise self.fail("'pattern' must be a string", path)
            if "minLength" in schema or "maxLength" in schema:
                raise self.fail("'pattern' together with 'minLength'/'maxLength'", path)
            try:
                inner = pattern_grammar(pattern, self.add)
            except UnsupportedPattern as exc:
                raise self.fail(f"'pattern' uses {exc}, which is not supported", path) from None
            return self.add("pattern", f'"\\"" {inner} "\\""')
        if hi is not None and hi < lo:
            raise self.fail("'maxLength' is below 'minLength'", path)
        if lo == 0 and hi is None:
            return self.use("string")
        self.use("char")
        return self.add("string", f'"\\"" {repeat("char", lo, hi, self.add)} "\\""')

    def number(self, schema: SchemaObject, path: str, kind: str) -> str:
        try:
            lo, lo_x = read_bound(schema, "minimum", "exclusiveMinimum")
            hi, hi_x = read_bound(schema, "maximum", "exclusiveMaximum")
        except ValueError as exc:
            raise self.fail(str(exc), path) from None
        if lo is None and hi is None:
            return self.use(kind)
        if kind == "integer":
            body = integer_range(whole_bound(lo, lo_x, 1), whole_bound(hi, hi_x, -1))
        else:
            body = number_range(lo, lo_x, hi, hi_x)
        if body is None:
            raise self.fail(f"no {kind} lies between its bounds", path)
        return self.add(kind, body)


def _types(kind: JsonValue) -> set[str] | None:
    """The JSON types a `type` keyword allows (integers are numbers too), or None for any."""
    kinds = [kind] if isinstance(kind, str) else kind if isinstance(kind, list) else None
    if kinds is None:
        return None
    found = {str(k) for k in kinds}
    return found | ({"integer", "number"} if found & {"integer", "number"} else set())


def _json_type(value: JsonValue) -> str:
    if value is None or isinstance(value, bool):
        return "null" if value is None else "boolean"
    if isinstance(value, int | float):
        return "integer" if isinstance(value, int) or value.is_integer() else "number"
    return "string" if isinstance(value, str) else "array" if isinstance(value, list) else "object"


def _values(schema: JsonValue) -> set[str] | None:
    """The values a `const` / `enum` allows, as comparable keys, or None for any."""
    if not isinstance(schema, dict):
        return None
    values = [schema["const"]] if "const" in schema else schema.get("enum")
    if not isinstance(values, list):
        return None
    return {
        repr(float(v))  # 1 and 1.0 are one value to JSON Schema
        if isinstance(v, int | float) and not isinstance(v, bool)
        else json.dumps(v, sort_keys=True)
        for v in values
    }


def _implied_type(schema: SchemaObject) -> str | None:
    if any(k in schema for k in ("properties", "required", "additionalProperties")):
        return "object"
    if any(k in schema for k in ("items", "minItems", "maxItems")):
        return "array"
    if any(k in schema for k in ("minLength", "maxLength", "pattern")):
        return "string"
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
        return "number"
    return None


def _count(
    schema: SchemaObject, key: str, default: int | None, b: _Builder, path: str
) -> int | None:
    value = schema.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise b.fail(f"'{key}' must be a non-negative integer", path)
    return value


def schema_grammar(schema: JsonValue, param: str = "response_format") -> str:
    """GBNF (root rule `root`) for the compact-or-spaced JSON values `schema` accepts;
    BadRequest (naming `param`) for a schema it cannot promise to honour."""
    if not isinstance(schema, dict):
        raise BadRequest("a JSON schema must be an object", param=param)
    rules: dict[str, str] = {}
    root = _Builder(schema, param, rules).visit(schema, "")
    return _text(root, rules)


def call_grammar(functions: dict[str, JsonValue]) -> str:
    """GBNF for one forced tool call, `{"name":"f","arguments":{...}}` (compact around the
    arguments), to any of `functions` (name -> parameters schema); BadRequest on `tools`."""
    rules: dict[str, str] = {}
    calls = []
    for name, params in functions.items():
        if not isinstance(params, dict):
            raise BadRequest(f"the parameters of {name!r} must be a JSON schema", param="tools")
        args = _Builder(params, "tools", rules).visit(params, "")
        calls.append(f'{literal(call_prefix(name))} {args} "}}"')
    return _text(" | ".join(calls), rules)


def call_prefix(name: str) -> str:
    """The text a forced call to `name` starts with, up to its arguments."""
    return '{"name":' + json.dumps(name) + ',"arguments":'


def _text(root: str, rules: dict[str, str]) -> str:
    return "\n".join(f"{n} ::= {b}" for n, b in {"root": root, **rules}.items()) + "\n"
