"""Table definitions, built per database so two stores in one process never share state."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import peewee

from app.core.types import MessageStatus, ModelState, NodeStatus


@dataclass(frozen=True)
class Tables:
    """The model classes bound to one database."""

    Model: Any
    Node: Any
    NodeModel: Any
    ApiKey: Any
    Setting: Any
    Request: Any
    Conversation: Any
    Message: Any
    Response: Any
    RequestBody: Any
    StatsTraffic: Any
    StatsNode: Any

    def all(self) -> list[Any]:
        """Every table of schema 1, in creation order (later versions add their own)."""
        return [self.Model, self.Node, self.NodeModel, self.ApiKey, self.Setting]


def build_tables(database: peewee.Database) -> Tables:
    """Declare the tables against `database`."""

    class Base(peewee.Model):
        class Meta:
            database = None

    Base._meta.set_database(database)

    class Model(Base):
        name = peewee.TextField(primary_key=True)
        repo = peewee.TextField()
        filename = peewee.TextField()
        source = peewee.TextField()
        display_name = peewee.TextField()
        size_bytes = peewee.BigIntegerField()
        required_memory_bytes = peewee.BigIntegerField()
        catalog_id = peewee.TextField(null=True)
        revision = peewee.TextField(null=True)
        quantization = peewee.TextField(null=True)
        sha256 = peewee.TextField(null=True)
        context_length = peewee.IntegerField(null=True)
        capabilities = peewee.TextField(default='["TextGeneration"]')
        format = peewee.TextField(default="gguf")
        files = peewee.TextField(default="[]")
        created_at = peewee.FloatField(default=time.time)
        gpu_layers = peewee.IntegerField(null=True)  # schema 5: null = the node's own setting
        context_size = peewee.IntegerField(null=True)  # schema 6: null = the node's own setting

        class Meta:
            table_name = "models"

    class Node(Base):
        id = peewee.TextField(primary_key=True)
        name = peewee.TextField()
        url = peewee.TextField()
        kind = peewee.TextField(default="remote")  # local / remote / external
        status = peewee.TextField(default=NodeStatus.PENDING.value)
        token = peewee.TextField(null=True)  # schema < 4 kept node tokens here, in clear
        token_hash = peewee.TextField(null=True)  # schema 4: only a hash of the node's token
        api_key = peewee.TextField(null=True)
        runtime_version = peewee.TextField(null=True)
        info = peewee.TextField(default="{}")
        tags = peewee.TextField(default="[]")
        notes = peewee.TextField(default="")
        created_at = peewee.FloatField(default=time.time)
        last_seen = peewee.FloatField(null=True)

        class Meta:
            table_name = "nodes"

    class NodeModel(Base):
        node = peewee.ForeignKeyField(Node, on_delete="CASCADE", column_name="node_id")
        model = peewee.ForeignKeyField(Model, on_delete="CASCADE", column_name="model_name")
        state = peewee.TextField(default=ModelState.PENDING.value)
        downloaded_bytes = peewee.BigIntegerField(default=0)
        total_bytes = peewee.BigIntegerField(default=0)
        error = peewee.TextField(null=True)
        updated_at = peewee.FloatField(default=time.time)

        class Meta:
            table_name = "node_models"
            primary_key = peewee.CompositeKey("node", "model")

    class ApiKey(Base):
        id = peewee.TextField(primary_key=True)
        name = peewee.TextField()
        key_hash = peewee.TextField(unique=True)
        prefix = peewee.TextField()
        created_at = peewee.FloatField(default=time.time)
        last_used_at = peewee.FloatField(null=True)

        class Meta:
            table_name = "api_keys"

    class Setting(Base):
        key = peewee.TextField(primary_key=True)
        value = peewee.TextField()

        class Meta:
            table_name = "settings"

    class Request(Base):
        id = peewee.AutoField()
        at = peewee.FloatField(index=True)
        endpoint = peewee.TextField()
        model = peewee.TextField()
        node_id = peewee.TextField(null=True)
        status = peewee.IntegerField()
        stream = peewee.BooleanField(default=False)
        latency_ms = peewee.FloatField(null=True)  # until the node's first byte
        duration_ms = peewee.FloatField()
        error = peewee.TextField(null=True)
        tokens_in = peewee.IntegerField(null=True)  # schema 8: the answer's usage
        tokens_out = peewee.IntegerField(null=True)
        generation_ms = peewee.FloatField(null=True)  # time spent generating tokens_out
        client = peewee.TextField(null=True)  # the API key's name ("admin": the admin token)

        class Meta:
            table_name = "requests"

    class RequestBody(Base):  # schema 8: the bodies of a request, capped, kept as long
        request_id = peewee.IntegerField(primary_key=True)  # requests.id
        at = peewee.FloatField(index=True)
        request = peewee.TextField(null=True)
        request_truncated = peewee.BooleanField(default=False)
        response = peewee.TextField(null=True)  # a stream: assembled as one answer
        response_truncated = peewee.BooleanField(default=False)

        class Meta:
            table_name = "request_bodies"

    class Conversation(Base):
        id = peewee.TextField(primary_key=True)
        title = peewee.TextField()
        model = peewee.TextField(default="")
        system_prompt = peewee.TextField(default="")
        params = peewee.TextField(default="{}")
        created_at = peewee.FloatField(default=time.time)
        updated_at = peewee.FloatField(default=time.time, index=True)

        class Meta:
            table_name = "conversations"

    class Message(Base):
        id = peewee.AutoField()
        conversation = peewee.ForeignKeyField(
            Conversation, on_delete="CASCADE", column_name="conversation_id"
        )
        role = peewee.TextField()
        content = peewee.TextField()
        attachments = peewee.TextField(default="[]")  # names and kinds, not the files
        status = peewee.TextField(default=MessageStatus.DONE.value)
        stats = peewee.TextField(default="{}")
        created_at = peewee.FloatField(default=time.time)

        class Meta:
            table_name = "messages"

    class Response(Base):  # schema 7: stored Responses API answers (previous_response_id)
        id = peewee.TextField(primary_key=True)
        owner = peewee.TextField(null=True)  # the API key that created it; null: none used
        model = peewee.TextField()
        created_at = peewee.FloatField(index=True)
        body = peewee.TextField()  # the response object, as GET /v1/responses/{id} answers
        context = peewee.TextField()  # the chat messages a continuation starts from (JSON)

        class Meta:
            table_name = "responses"

    class StatsTraffic(Base):  # schema 9: /v1 traffic per minute (24 h) and per hour (7 days)
        step = peewee.IntegerField()  # 60 or 3600
        at = peewee.IntegerField()  # the bucket's start, unix seconds
        model = peewee.TextField()  # "": a name no model has (never a series of its own)
        node_id = peewee.TextField()  # "": no node was reached
        requests = peewee.IntegerField(default=0)
        errors = peewee.IntegerField(default=0)
        tokens_in = peewee.IntegerField(default=0)
        tokens_out = peewee.IntegerField(default=0)
        gen_tokens = peewee.IntegerField(default=0)  # tokens_out of the rows with generation_ms
        gen_ms = peewee.FloatField(default=0.0)
        ttft = peewee.BlobField(null=True)  # log-scale histogram: uint32 counts by bin (LE)
        latency = peewee.BlobField(null=True)

        class Meta:
            table_name = "stats_traffic"
            primary_key = peewee.CompositeKey("step", "at", "model", "node_id")

    class StatsNode(Base):  # schema 9: node device use, sums and counts per bucket
        step = peewee.IntegerField()
        at = peewee.IntegerField()
        node_id = peewee.TextField()
        beats = peewee.IntegerField(default=0)
        cpu_sum = peewee.FloatField(default=0.0)
        cpu_n = peewee.IntegerField(default=0)
        mem_used_sum = peewee.FloatField(default=0.0)
        mem_total_sum = peewee.FloatField(default=0.0)
        mem_n = peewee.IntegerField(default=0)
        gpu_sum = peewee.FloatField(default=0.0)
        gpu_n = peewee.IntegerField(default=0)
        gpu_used_sum = peewee.FloatField(default=0.0)
        gpu_total_sum = peewee.FloatField(default=0.0)
        gpu_mem_n = peewee.IntegerField(default=0)

        class Meta:
            table_name = "stats_nodes"
            primary_key = peewee.CompositeKey("step", "at", "node_id")

    return Tables(
        Model,
        Node,
        NodeModel,
        ApiKey,
        Setting,
        Request,
        Conversation,
        Message,
        Response,
        RequestBody,
        StatsTraffic,
        StatsNode,
    )
