from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_USER: _ClassVar[Role]
    ROLE_ASSISTANT: _ClassVar[Role]
    ROLE_SYSTEM: _ClassVar[Role]

class MemoryKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEMORY_KIND_UNSPECIFIED: _ClassVar[MemoryKind]
    MEMORY_KIND_FACT: _ClassVar[MemoryKind]
    MEMORY_KIND_PREFERENCE: _ClassVar[MemoryKind]
    MEMORY_KIND_EVENT: _ClassVar[MemoryKind]
    MEMORY_KIND_EPISODE: _ClassVar[MemoryKind]
    MEMORY_KIND_MESSAGE: _ClassVar[MemoryKind]

class JobType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_TYPE_UNSPECIFIED: _ClassVar[JobType]
    JOB_TYPE_EXTRACT_FACTS: _ClassVar[JobType]
    JOB_TYPE_SUMMARIZE_THREAD: _ClassVar[JobType]
    JOB_TYPE_CREATE_EPISODE: _ClassVar[JobType]
ROLE_UNSPECIFIED: Role
ROLE_USER: Role
ROLE_ASSISTANT: Role
ROLE_SYSTEM: Role
MEMORY_KIND_UNSPECIFIED: MemoryKind
MEMORY_KIND_FACT: MemoryKind
MEMORY_KIND_PREFERENCE: MemoryKind
MEMORY_KIND_EVENT: MemoryKind
MEMORY_KIND_EPISODE: MemoryKind
MEMORY_KIND_MESSAGE: MemoryKind
JOB_TYPE_UNSPECIFIED: JobType
JOB_TYPE_EXTRACT_FACTS: JobType
JOB_TYPE_SUMMARIZE_THREAD: JobType
JOB_TYPE_CREATE_EPISODE: JobType

class Message(_message.Message):
    __slots__ = ("id", "role", "content", "created_at_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    id: str
    role: Role
    content: str
    created_at_ms: int
    def __init__(self, id: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ..., content: _Optional[str] = ..., created_at_ms: _Optional[int] = ...) -> None: ...

class MemoryFilter(_message.Message):
    __slots__ = ("kinds", "min_importance", "since_ms", "until_ms", "thread_id", "include_superseded")
    KINDS_FIELD_NUMBER: _ClassVar[int]
    MIN_IMPORTANCE_FIELD_NUMBER: _ClassVar[int]
    SINCE_MS_FIELD_NUMBER: _ClassVar[int]
    UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_SUPERSEDED_FIELD_NUMBER: _ClassVar[int]
    kinds: _containers.RepeatedScalarFieldContainer[MemoryKind]
    min_importance: int
    since_ms: int
    until_ms: int
    thread_id: str
    include_superseded: bool
    def __init__(self, kinds: _Optional[_Iterable[_Union[MemoryKind, str]]] = ..., min_importance: _Optional[int] = ..., since_ms: _Optional[int] = ..., until_ms: _Optional[int] = ..., thread_id: _Optional[str] = ..., include_superseded: _Optional[bool] = ...) -> None: ...

class RecallOptions(_message.Message):
    __slots__ = ("disabled", "top_k", "filter")
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    disabled: bool
    top_k: int
    filter: MemoryFilter
    def __init__(self, disabled: _Optional[bool] = ..., top_k: _Optional[int] = ..., filter: _Optional[_Union[MemoryFilter, _Mapping]] = ...) -> None: ...

class PrepareTurnRequest(_message.Message):
    __slots__ = ("user_id", "thread_id", "query", "token_budget", "recall", "exclude_history", "count_rate_limit", "idempotency_key", "tenant")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TOKEN_BUDGET_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_HISTORY_FIELD_NUMBER: _ClassVar[int]
    COUNT_RATE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    thread_id: str
    query: str
    token_budget: int
    recall: RecallOptions
    exclude_history: bool
    count_rate_limit: bool
    idempotency_key: str
    tenant: str
    def __init__(self, user_id: _Optional[str] = ..., thread_id: _Optional[str] = ..., query: _Optional[str] = ..., token_budget: _Optional[int] = ..., recall: _Optional[_Union[RecallOptions, _Mapping]] = ..., exclude_history: _Optional[bool] = ..., count_rate_limit: _Optional[bool] = ..., idempotency_key: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class Replay(_message.Message):
    __slots__ = ("user_message", "assistant_message")
    USER_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ASSISTANT_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    user_message: Message
    assistant_message: Message
    def __init__(self, user_message: _Optional[_Union[Message, _Mapping]] = ..., assistant_message: _Optional[_Union[Message, _Mapping]] = ...) -> None: ...

class DroppedContext(_message.Message):
    __slots__ = ("messages", "memories", "summary", "preferences")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    MEMORIES_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    PREFERENCES_FIELD_NUMBER: _ClassVar[int]
    messages: int
    memories: int
    summary: bool
    preferences: int
    def __init__(self, messages: _Optional[int] = ..., memories: _Optional[int] = ..., summary: _Optional[bool] = ..., preferences: _Optional[int] = ...) -> None: ...

class RateLimitWindow(_message.Message):
    __slots__ = ("window", "limit", "remaining", "reset_after_s")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    RESET_AFTER_S_FIELD_NUMBER: _ClassVar[int]
    window: str
    limit: int
    remaining: int
    reset_after_s: int
    def __init__(self, window: _Optional[str] = ..., limit: _Optional[int] = ..., remaining: _Optional[int] = ..., reset_after_s: _Optional[int] = ...) -> None: ...

class ScoredMemory(_message.Message):
    __slots__ = ("memory", "score", "vector_score", "keyword_score")
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    VECTOR_SCORE_FIELD_NUMBER: _ClassVar[int]
    KEYWORD_SCORE_FIELD_NUMBER: _ClassVar[int]
    memory: Memory
    score: float
    vector_score: float
    keyword_score: float
    def __init__(self, memory: _Optional[_Union[Memory, _Mapping]] = ..., score: _Optional[float] = ..., vector_score: _Optional[float] = ..., keyword_score: _Optional[float] = ...) -> None: ...

class PrepareTurnResponse(_message.Message):
    __slots__ = ("thread_id", "thread_exists", "messages", "summary", "preferences", "memories", "context_tokens", "token_budget", "dropped", "rate_limits", "degraded", "replay")
    class PreferencesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_EXISTS_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    PREFERENCES_FIELD_NUMBER: _ClassVar[int]
    MEMORIES_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_BUDGET_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMITS_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    REPLAY_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    thread_exists: bool
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    summary: str
    preferences: _containers.ScalarMap[str, str]
    memories: _containers.RepeatedCompositeFieldContainer[ScoredMemory]
    context_tokens: int
    token_budget: int
    dropped: DroppedContext
    rate_limits: _containers.RepeatedCompositeFieldContainer[RateLimitWindow]
    degraded: _containers.RepeatedScalarFieldContainer[str]
    replay: Replay
    def __init__(self, thread_id: _Optional[str] = ..., thread_exists: _Optional[bool] = ..., messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., summary: _Optional[str] = ..., preferences: _Optional[_Mapping[str, str]] = ..., memories: _Optional[_Iterable[_Union[ScoredMemory, _Mapping]]] = ..., context_tokens: _Optional[int] = ..., token_budget: _Optional[int] = ..., dropped: _Optional[_Union[DroppedContext, _Mapping]] = ..., rate_limits: _Optional[_Iterable[_Union[RateLimitWindow, _Mapping]]] = ..., degraded: _Optional[_Iterable[str]] = ..., replay: _Optional[_Union[Replay, _Mapping]] = ...) -> None: ...

class CommitTurnRequest(_message.Message):
    __slots__ = ("user_id", "thread_id", "idempotency_key", "user_message", "assistant_message", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    USER_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ASSISTANT_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    thread_id: str
    idempotency_key: str
    user_message: str
    assistant_message: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, user_id: _Optional[str] = ..., thread_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., user_message: _Optional[str] = ..., assistant_message: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CommitTurnResponse(_message.Message):
    __slots__ = ("thread_id", "message_ids", "duplicate", "message_count", "enqueued_jobs")
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    ENQUEUED_JOBS_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    message_ids: _containers.RepeatedScalarFieldContainer[str]
    duplicate: bool
    message_count: int
    enqueued_jobs: _containers.RepeatedScalarFieldContainer[JobType]
    def __init__(self, thread_id: _Optional[str] = ..., message_ids: _Optional[_Iterable[str]] = ..., duplicate: _Optional[bool] = ..., message_count: _Optional[int] = ..., enqueued_jobs: _Optional[_Iterable[_Union[JobType, str]]] = ...) -> None: ...

class ThreadInfo(_message.Message):
    __slots__ = ("thread_id", "user_id", "created_at_ms", "updated_at_ms", "message_count", "title", "expires_at_ms", "has_summary", "closed")
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    HAS_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    user_id: str
    created_at_ms: int
    updated_at_ms: int
    message_count: int
    title: str
    expires_at_ms: int
    has_summary: bool
    closed: bool
    def __init__(self, thread_id: _Optional[str] = ..., user_id: _Optional[str] = ..., created_at_ms: _Optional[int] = ..., updated_at_ms: _Optional[int] = ..., message_count: _Optional[int] = ..., title: _Optional[str] = ..., expires_at_ms: _Optional[int] = ..., has_summary: _Optional[bool] = ..., closed: _Optional[bool] = ...) -> None: ...

class GetThreadRequest(_message.Message):
    __slots__ = ("user_id", "thread_id", "limit")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    thread_id: str
    limit: int
    def __init__(self, user_id: _Optional[str] = ..., thread_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class GetThreadResponse(_message.Message):
    __slots__ = ("thread", "messages", "summary")
    THREAD_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    thread: ThreadInfo
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    summary: str
    def __init__(self, thread: _Optional[_Union[ThreadInfo, _Mapping]] = ..., messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., summary: _Optional[str] = ...) -> None: ...

class ListThreadsRequest(_message.Message):
    __slots__ = ("user_id", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListThreadsResponse(_message.Message):
    __slots__ = ("threads", "next_page_token")
    THREADS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    threads: _containers.RepeatedCompositeFieldContainer[ThreadInfo]
    next_page_token: str
    def __init__(self, threads: _Optional[_Iterable[_Union[ThreadInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteThreadRequest(_message.Message):
    __slots__ = ("user_id", "thread_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    thread_id: str
    def __init__(self, user_id: _Optional[str] = ..., thread_id: _Optional[str] = ...) -> None: ...

class DeleteThreadResponse(_message.Message):
    __slots__ = ("deleted", "messages_deleted")
    DELETED_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    messages_deleted: int
    def __init__(self, deleted: _Optional[bool] = ..., messages_deleted: _Optional[int] = ...) -> None: ...

class CloseThreadRequest(_message.Message):
    __slots__ = ("user_id", "thread_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    thread_id: str
    def __init__(self, user_id: _Optional[str] = ..., thread_id: _Optional[str] = ...) -> None: ...

class CloseThreadResponse(_message.Message):
    __slots__ = ("episode_enqueued",)
    EPISODE_ENQUEUED_FIELD_NUMBER: _ClassVar[int]
    episode_enqueued: bool
    def __init__(self, episode_enqueued: _Optional[bool] = ...) -> None: ...

class GetPreferencesRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class Preferences(_message.Message):
    __slots__ = ("values",)
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.ScalarMap[str, str]
    def __init__(self, values: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SetPreferenceRequest(_message.Message):
    __slots__ = ("user_id", "key", "value")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    key: str
    value: str
    def __init__(self, user_id: _Optional[str] = ..., key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class DeletePreferenceRequest(_message.Message):
    __slots__ = ("user_id", "key")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    key: str
    def __init__(self, user_id: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class Memory(_message.Message):
    __slots__ = ("id", "user_id", "kind", "text", "importance", "created_at_ms", "updated_at_ms", "valid_from_ms", "valid_to_ms", "source_thread_id", "source_message_ids", "superseded_by", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IMPORTANCE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_MS_FIELD_NUMBER: _ClassVar[int]
    VALID_TO_MS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_MESSAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDED_BY_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    id: str
    user_id: str
    kind: MemoryKind
    text: str
    importance: int
    created_at_ms: int
    updated_at_ms: int
    valid_from_ms: int
    valid_to_ms: int
    source_thread_id: str
    source_message_ids: _containers.RepeatedScalarFieldContainer[str]
    superseded_by: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., user_id: _Optional[str] = ..., kind: _Optional[_Union[MemoryKind, str]] = ..., text: _Optional[str] = ..., importance: _Optional[int] = ..., created_at_ms: _Optional[int] = ..., updated_at_ms: _Optional[int] = ..., valid_from_ms: _Optional[int] = ..., valid_to_ms: _Optional[int] = ..., source_thread_id: _Optional[str] = ..., source_message_ids: _Optional[_Iterable[str]] = ..., superseded_by: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SearchMemoriesRequest(_message.Message):
    __slots__ = ("user_id", "query", "top_k", "filter", "token_budget")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    TOKEN_BUDGET_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    query: str
    top_k: int
    filter: MemoryFilter
    token_budget: int
    def __init__(self, user_id: _Optional[str] = ..., query: _Optional[str] = ..., top_k: _Optional[int] = ..., filter: _Optional[_Union[MemoryFilter, _Mapping]] = ..., token_budget: _Optional[int] = ...) -> None: ...

class SearchMemoriesResponse(_message.Message):
    __slots__ = ("results", "context_tokens")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ScoredMemory]
    context_tokens: int
    def __init__(self, results: _Optional[_Iterable[_Union[ScoredMemory, _Mapping]]] = ..., context_tokens: _Optional[int] = ...) -> None: ...

class ListMemoriesRequest(_message.Message):
    __slots__ = ("user_id", "filter", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    filter: MemoryFilter
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[str] = ..., filter: _Optional[_Union[MemoryFilter, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListMemoriesResponse(_message.Message):
    __slots__ = ("memories", "next_page_token")
    MEMORIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    memories: _containers.RepeatedCompositeFieldContainer[Memory]
    next_page_token: str
    def __init__(self, memories: _Optional[_Iterable[_Union[Memory, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AddMemoryRequest(_message.Message):
    __slots__ = ("user_id", "text", "kind", "importance", "source_thread_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    IMPORTANCE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    text: str
    kind: MemoryKind
    importance: int
    source_thread_id: str
    def __init__(self, user_id: _Optional[str] = ..., text: _Optional[str] = ..., kind: _Optional[_Union[MemoryKind, str]] = ..., importance: _Optional[int] = ..., source_thread_id: _Optional[str] = ...) -> None: ...

class UpdateMemoryRequest(_message.Message):
    __slots__ = ("user_id", "memory_id", "text", "importance", "kind")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    MEMORY_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IMPORTANCE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    memory_id: str
    text: str
    importance: int
    kind: MemoryKind
    def __init__(self, user_id: _Optional[str] = ..., memory_id: _Optional[str] = ..., text: _Optional[str] = ..., importance: _Optional[int] = ..., kind: _Optional[_Union[MemoryKind, str]] = ...) -> None: ...

class DeleteMemoryRequest(_message.Message):
    __slots__ = ("user_id", "memory_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    MEMORY_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    memory_id: str
    def __init__(self, user_id: _Optional[str] = ..., memory_id: _Optional[str] = ...) -> None: ...

class DeleteMemoryResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    def __init__(self, deleted: _Optional[bool] = ...) -> None: ...

class ForgetUserRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class ErasureReceipt(_message.Message):
    __slots__ = ("user_id", "erased_at_ms", "counts", "total", "pending")
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ERASED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    erased_at_ms: int
    counts: _containers.ScalarMap[str, int]
    total: int
    pending: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_id: _Optional[str] = ..., erased_at_ms: _Optional[int] = ..., counts: _Optional[_Mapping[str, int]] = ..., total: _Optional[int] = ..., pending: _Optional[_Iterable[str]] = ...) -> None: ...

class ForgetUserResponse(_message.Message):
    __slots__ = ("receipt",)
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    receipt: ErasureReceipt
    def __init__(self, receipt: _Optional[_Union[ErasureReceipt, _Mapping]] = ...) -> None: ...

class ExportUserRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class ExportUserChunk(_message.Message):
    __slots__ = ("section", "json")
    SECTION_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    section: str
    json: bytes
    def __init__(self, section: _Optional[str] = ..., json: _Optional[bytes] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class UserStats(_message.Message):
    __slots__ = ("threads", "messages", "approx_bytes", "facts", "episodes", "preferences")
    THREADS_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    APPROX_BYTES_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    EPISODES_FIELD_NUMBER: _ClassVar[int]
    PREFERENCES_FIELD_NUMBER: _ClassVar[int]
    threads: int
    messages: int
    approx_bytes: int
    facts: int
    episodes: int
    preferences: int
    def __init__(self, threads: _Optional[int] = ..., messages: _Optional[int] = ..., approx_bytes: _Optional[int] = ..., facts: _Optional[int] = ..., episodes: _Optional[int] = ..., preferences: _Optional[int] = ...) -> None: ...

class GetStatsResponse(_message.Message):
    __slots__ = ("redis_used_memory_bytes", "redis_maxmemory_bytes", "keys_by_kind", "job_stream_length", "job_pending", "dead_letter_length", "vector_count", "user")
    class KeysByKindEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    REDIS_USED_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    REDIS_MAXMEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    KEYS_BY_KIND_FIELD_NUMBER: _ClassVar[int]
    JOB_STREAM_LENGTH_FIELD_NUMBER: _ClassVar[int]
    JOB_PENDING_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_LENGTH_FIELD_NUMBER: _ClassVar[int]
    VECTOR_COUNT_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    redis_used_memory_bytes: int
    redis_maxmemory_bytes: int
    keys_by_kind: _containers.ScalarMap[str, int]
    job_stream_length: int
    job_pending: int
    dead_letter_length: int
    vector_count: int
    user: UserStats
    def __init__(self, redis_used_memory_bytes: _Optional[int] = ..., redis_maxmemory_bytes: _Optional[int] = ..., keys_by_kind: _Optional[_Mapping[str, int]] = ..., job_stream_length: _Optional[int] = ..., job_pending: _Optional[int] = ..., dead_letter_length: _Optional[int] = ..., vector_count: _Optional[int] = ..., user: _Optional[_Union[UserStats, _Mapping]] = ...) -> None: ...
