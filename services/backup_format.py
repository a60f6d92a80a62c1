"""The backup stream format: zstd-compressed, AES-256-GCM chunks in a STREAM construction
(per-backup data key wrapped under BACKUP_ENCRYPTION_KEY, header hash + chunk index + final
flag in every chunk's associated data). Pure: bytes in, bytes out. See docs/backup-format.md."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.errors import NotConfigured, ServiceError

MAGIC = b"\x89OPSBAK\n"
FORMAT_VERSION = 1
COMPRESSION_ZSTD = 1  # each chunk one independent zstd frame, content size in its header
KEY_KIND_RAW = 1  # 32 random bytes given as hex or base64
KEY_KIND_PASSPHRASE = 2  # a passphrase of >= 16 characters through HKDF-SHA256
DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024
MAX_CHUNK_SIZE = 64 * 1024 * 1024  # a reader refuses more, so a damaged header cannot make it allocate GBs
MIN_PASSPHRASE_CHARS = 16
ZSTD_LEVEL = 1  # 2.6x faster than 3 on pg_dump output, a few % larger (tests/bench/test_backup_speed.py)

# Fixed HKDF contexts; changing any of them makes every existing backup unreadable.
PASSPHRASE_SALT = b"opsconsole-backup passphrase salt v1"
PASSPHRASE_INFO = b"opsconsole-backup v1 master-key"
KEY_ID_INFO = b"opsconsole-backup v1 key-id"
WRAP_INFO = b"opsconsole-backup v1 wrap-key"

# magic, version, key kind, compression, zstd level, chunk size, key id, wrap salt,
# nonce prefix, wrap nonce: the wrapped data key's associated data.
_HEADER_PREFIX = struct.Struct(">8sBBBBI8s32s7s12s")
_WRAPPED_KEY_LEN = 32 + 16
HEADER_LEN = _HEADER_PREFIX.size + _WRAPPED_KEY_LEN  # 123
_FRAME_HEAD = struct.Struct(">IB")  # ciphertext length (incl. 16-byte tag), flags
FRAME_HEAD_LEN = _FRAME_HEAD.size
_FLAG_FINAL = 0x01
_MAX_CHUNKS = 2**32  # the nonce's counter is 32 bits


class BackupError(ServiceError):
    """A backup stream could not be written or read."""


class BackupKeyMissing(BackupError, NotConfigured):
    """BACKUP_ENCRYPTION_KEY is not set: backups refuse to run rather than store plaintext."""


class BackupKeyInvalid(BackupError):
    """BACKUP_ENCRYPTION_KEY is set but too weak or malformed to use."""


class WrongKey(BackupError):
    """The configured key is not the one this backup was encrypted with."""


class BackupCorrupt(BackupError):
    """The stream is damaged, truncated, reordered or edited; `chunk` is the chunk index
    where it was found (None for the header). No plaintext of that chunk was released."""

    def __init__(self, message: str, *, chunk: int | None = None):
        super().__init__(message, backend="backup")
        self.chunk = chunk


@dataclass(frozen=True)
class BackupKey:
    """The 32-byte master key and how it was given (recorded in each backup's header)."""

    material: bytes
    kind: int = KEY_KIND_RAW

    def __post_init__(self) -> None:
        if len(self.material) != 32:
            raise BackupKeyInvalid(f"a backup master key is 32 bytes, not {len(self.material)}")

    @property
    def key_id(self) -> bytes:
        """8 bytes naming the key (an HKDF output, reveals nothing of it)."""
        return _hkdf(self.material, None, KEY_ID_INFO, 8)

    def __repr__(self) -> str:  # never print key material
        return f"BackupKey(key_id={self.key_id.hex()}, kind={self.kind})"


def derive_key(configured: str | None) -> BackupKey:
    """The master key from BACKUP_ENCRYPTION_KEY: 64 hex characters or base64 of 32 bytes
    are used as they are; anything else of >= 16 characters is a passphrase run through
    HKDF-SHA256 with a fixed context. Raises BackupKeyMissing or BackupKeyInvalid."""
    text = (configured or "").strip()
    if not text:
        raise BackupKeyMissing(
            "BACKUP_ENCRYPTION_KEY is not set; backups refuse to run without it "
            "(make one with `openssl rand -hex 32`)",
            backend="backup",
        )
    if len(text) == 64:
        try:
            return BackupKey(bytes.fromhex(text), KEY_KIND_RAW)
        except ValueError:
            pass
    if len(text) == 44:
        for altchars in (b"+/", b"-_"):
            try:
                raw = base64.b64decode(text.encode("ascii"), altchars=altchars, validate=True)
            except (ValueError, binascii.Error):
                continue
            if len(raw) == 32:
                return BackupKey(raw, KEY_KIND_RAW)
    if len(text) < MIN_PASSPHRASE_CHARS:
        raise BackupKeyInvalid(
            f"BACKUP_ENCRYPTION_KEY is {len(text)} characters: give 32 random bytes as hex "
            f"(64 characters) or base64 (44), or a passphrase of at least {MIN_PASSPHRASE_CHARS} "
            "characters (`openssl rand -hex 32` makes a good key)",
            backend="backup",
        )
    return BackupKey(_hkdf(text.encode("utf-8"), PASSPHRASE_SALT, PASSPHRASE_INFO, 32), KEY_KIND_PASSPHRASE)


@dataclass(frozen=True)
class BackupHeader:
    """A parsed header; `raw` is its exact bytes (hashed into every chunk)."""

    version: int
    key_kind: int
    compression: int
    level: int
    chunk_size: int
    key_id: bytes
    wrap_salt: bytes
    nonce_prefix: bytes
    wrap_nonce: bytes
    wrapped_key: bytes
    raw: bytes


def parse_header(raw: bytes) -> BackupHeader:
    """The header's fields (not yet authenticated: that needs the key). Raises BackupCorrupt."""
    if len(raw) < HEADER_LEN:
        raise BackupCorrupt(f"the header is cut short ({len(raw)} of {HEADER_LEN} bytes)")
    raw = bytes(raw[:HEADER_LEN])
    magic, version, kind, compression, level, chunk_size, key_id, salt, prefix, wrap_nonce = (
        _HEADER_PREFIX.unpack_from(raw)
    )
    if magic != MAGIC:
        raise BackupCorrupt("not an opsconsole backup (the header's magic bytes are wrong)")
    if version != FORMAT_VERSION:
        raise BackupCorrupt(f"backup format version {version}; this console reads version {FORMAT_VERSION}")
    if compression != COMPRESSION_ZSTD or kind not in (KEY_KIND_RAW, KEY_KIND_PASSPHRASE):
        raise BackupCorrupt("the header names an unknown compression or key kind")
    if not 0 < chunk_size <= MAX_CHUNK_SIZE:
        raise BackupCorrupt(f"the header's chunk size {chunk_size} is out of range")
    return BackupHeader(
        version, kind, compression, level, chunk_size, key_id, salt, prefix, wrap_nonce,
        raw[_HEADER_PREFIX.size :], raw,
    )  # fmt: skip


def max_frame_len(chunk_size: int) -> int:
    """The largest frame (head + ciphertext + tag) a chunk of `chunk_size` can make:
    zstd's compress bound (s + s/256 + 64 + frame header) with room to spare."""
    return FRAME_HEAD_LEN + chunk_size + (chunk_size >> 8) + 512 + 16


def _hkdf(material: bytes, salt: bytes | None, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(material)


def _as_key(key: BackupKey | bytes) -> BackupKey:
    return key if isinstance(key, BackupKey) else BackupKey(bytes(key))


def _nonce(prefix: bytes, index: int, final: bool) -> bytes:
    return prefix + struct.pack(">IB", index, 1 if final else 0)


def _chunk_ad(header_hash: bytes, index: int, final: bool) -> bytes:
    return header_hash + struct.pack(">QB", index, 1 if final else 0)


class BackupWriter:
    """Turns plaintext into the stream: `header()`, then the frames `feed()` returns, then
    `finish()`'s final frame. Holds at most one chunk of plaintext."""

    def __init__(
        self,
        key: BackupKey | bytes,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        *,
        level: int = ZSTD_LEVEL,
        random: Callable[[int], bytes] = os.urandom,
    ):
        if not 0 < chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk_size must be 1..{MAX_CHUNK_SIZE}, not {chunk_size}")
        key = _as_key(key)
        self.chunk_size = chunk_size
        self._compressor = zstandard.ZstdCompressor(level=level, write_content_size=True)
        data_key, salt, prefix, wrap_nonce = random(32), random(32), random(7), random(12)
        head = _HEADER_PREFIX.pack(
            MAGIC, FORMAT_VERSION, key.kind, COMPRESSION_ZSTD, level, chunk_size, key.key_id,
            salt, prefix, wrap_nonce,
        )  # fmt: skip
        wrap_key = _hkdf(key.material, salt, WRAP_INFO, 32)
        self._header = head + AESGCM(wrap_key).encrypt(wrap_nonce, data_key, head)
        self._header_hash = hashlib.sha256(self._header).digest()
        self._aead = AESGCM(data_key)
        self._prefix = prefix
        self._pending = bytearray()
        self._sha = hashlib.sha256()
        self._finished = False
        self.chunks = 0
        self.plaintext_bytes = 0
        self.compressed_bytes = 0
        self.output_bytes = len(self._header)

    def header(self) -> bytes:
        """The header, to be written before every frame."""
        return self._header

    @property
    def buffered(self) -> int:
        """Plaintext bytes held for the next chunk (always < chunk_size)."""
        return len(self._pending)

    @property
    def plaintext_sha256(self) -> str:
        """Hex sha256 of the plaintext fed so far."""
        return self._sha.hexdigest()

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Takes plaintext; returns the frames of every chunk it completed (often none)."""
        if self._finished:
            raise BackupError("this backup stream is already finished")
        view = memoryview(data).cast("B")
        self._sha.update(view)
        self.plaintext_bytes += len(view)
        frames = []
        offset = 0
        if self._pending:
            take = min(self.chunk_size - len(self._pending), len(view))
            self._pending += view[:take]
            offset = take
            if len(self._pending) == self.chunk_size:
                frames.append(self._seal(bytes(self._pending), final=False))
                self._pending.clear()
        while len(view) - offset >= self.chunk_size:
            frames.append(self._seal(view[offset : offset + self.chunk_size], final=False))
            offset += self.chunk_size
        self._pending += view[offset:]
        return frames

    def finish(self) -> bytes:
        """The final chunk's frame (possibly of zero plaintext bytes); the stream is complete."""
        if self._finished:
            raise BackupError("this backup stream is already finished")
        frame = self._seal(bytes(self._pending), final=True)
        self._pending.clear()
        self._finished = True
        return frame

    def _seal(self, plain: bytes | memoryview, *, final: bool) -> bytes:
        index = self.chunks
        if index >= _MAX_CHUNKS:
            raise BackupError("a backup stream holds at most 2**32 chunks; use a larger chunk size")
        compressed = self._compressor.compress(plain)
        sealed = self._aead.encrypt(
            _nonce(self._prefix, index, final), compressed, _chunk_ad(self._header_hash, index, final)
        )
        self.chunks += 1
        self.compressed_bytes += len(compressed)
        frame = _FRAME_HEAD.pack(len(sealed), _FLAG_FINAL if final else 0) + sealed
        self.output_bytes += len(frame)
        return frame


@dataclass(frozen=True)
class BackupSummary:
    """What a reader found in a complete, authenticated stream."""

    chunks: int
    plaintext_bytes: int
    compressed_bytes: int
    stored_bytes: int
    plaintext_sha256: str
    key_id: str


class BackupReader:
    """Reads the stream fed in any pieces; releases a chunk's plaintext only after its tag,
    index, final flag and header binding check. Buffers at most one incomplete frame."""

    def __init__(self, key: BackupKey | bytes):
        self._key = _as_key(key)
        self._buffer = bytearray()
        self._header: BackupHeader | None = None
        self._header_hash = b""
        self._aead: AESGCM | None = None
        self._decompressor = zstandard.ZstdDecompressor()
        self._sha = hashlib.sha256()
        self._final_seen = False
        self.chunks = 0
        self.plaintext_bytes = 0
        self.compressed_bytes = 0
        self.stored_bytes = 0

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a header or frame."""
        return len(self._buffer)

    @property
    def header(self) -> BackupHeader | None:
        return self._header

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Takes the next bytes of the stream; returns the plaintext of every chunk they
        completed, in order. Raises WrongKey or BackupCorrupt (naming the chunk)."""
        view = memoryview(data).cast("B")
        self.stored_bytes += len(view)
        out: list[bytes] = []
        offset = 0
        while offset < len(view):
            if self._final_seen:
                raise BackupCorrupt(
                    f"bytes follow the final chunk (chunk {self.chunks - 1})", chunk=self.chunks
                )
            if self._buffer:
                # Top the buffer up to exactly one header or frame, no further (a frame's
                # length is known only once its head is in).
                need = self._needed(self._buffer)
                while len(self._buffer) < need and offset < len(view):
                    take = min(need - len(self._buffer), len(view) - offset)
                    self._buffer += view[offset : offset + take]
                    offset += take
                    need = self._needed(self._buffer)
                if len(self._buffer) < need:
                    break
                unit = bytes(self._buffer)
                self._buffer.clear()
                self._consume(unit, out)
                continue
            rest = view[offset:]
            need = self._needed(rest)
            if len(rest) < need:
                self._buffer += rest
                break
            self._consume(rest[:need], out)
            offset += need
        return out

    def finish(self) -> BackupSummary:
        """Ends the stream. Raises BackupCorrupt when it was cut (no final chunk, or a frame
        left incomplete)."""
        if self._header is None:
            raise BackupCorrupt(f"the stream ends inside the header ({self.stored_bytes} bytes)")
        if self._buffer:
            raise BackupCorrupt(
                f"the stream is cut inside chunk {self.chunks} ({len(self._buffer)} bytes of it present)",
                chunk=self.chunks,
            )
        if not self._final_seen:
            raise BackupCorrupt(
                f"the stream is truncated: it ends before chunk {self.chunks}, and the final chunk "
                "never came",
                chunk=self.chunks,
            )
        return BackupSummary(
            self.chunks, self.plaintext_bytes, self.compressed_bytes, self.stored_bytes,
            self._sha.hexdigest(), self._header.key_id.hex(),
        )  # fmt: skip

    def _needed(self, buf: bytes | bytearray | memoryview) -> int:
        """How many bytes the next unit (header or frame) takes, as far as `buf` tells."""
        if self._header is None:
            return HEADER_LEN
        if len(buf) < FRAME_HEAD_LEN:
            return FRAME_HEAD_LEN
        length, flags = _FRAME_HEAD.unpack_from(buf)
        if (
            flags & ~_FLAG_FINAL
            or length < 16
            or FRAME_HEAD_LEN + length > max_frame_len(self._header.chunk_size)
        ):
            raise BackupCorrupt(
                f"chunk {self.chunks}'s frame head is damaged (length {length}, flags {flags:#x})",
                chunk=self.chunks,
            )
        return FRAME_HEAD_LEN + length

    def _consume(self, unit: bytes | memoryview, out: list[bytes]) -> None:
        if self._header is None:
            self._open(bytes(unit))
            return
        assert self._aead is not None
        index = self.chunks
        _length, flags = _FRAME_HEAD.unpack_from(unit)
        final = bool(flags & _FLAG_FINAL)
        try:
            compressed = self._aead.decrypt(
                _nonce(self._header.nonce_prefix, index, final),
                bytes(unit[FRAME_HEAD_LEN:]),
                _chunk_ad(self._header_hash, index, final),
            )
        except InvalidTag:
            raise BackupCorrupt(
                f"chunk {index} failed authentication: the backup is damaged, its chunks reordered, "
                "or its header edited",
                chunk=index,
            ) from None
        try:
            size = zstandard.frame_content_size(compressed)
        except zstandard.ZstdError:
            size = -1
        if not 0 <= size <= self._header.chunk_size or (not final and size != self._header.chunk_size):
            raise BackupCorrupt(f"chunk {index} holds {size} bytes, not a chunk's worth", chunk=index)
        try:
            plain = self._decompressor.decompress(compressed)
        except zstandard.ZstdError as error:
            raise BackupCorrupt(f"chunk {index} does not decompress: {error}", chunk=index) from None
        self._sha.update(plain)
        self.chunks += 1
        self.plaintext_bytes += len(plain)
        self.compressed_bytes += len(compressed)
        self._final_seen = final
        if plain:
            out.append(plain)

    def _open(self, raw: bytes) -> None:
        header = parse_header(raw)
        if header.key_id != self._key.key_id:
            given = "a passphrase" if header.key_kind == KEY_KIND_PASSPHRASE else "a 32-byte key"
            raise WrongKey(
                f"this backup was encrypted with key id {header.key_id.hex()} ({given}); "
                f"BACKUP_ENCRYPTION_KEY is key id {self._key.key_id.hex()}",
                backend="backup",
            )
        wrap_key = _hkdf(self._key.material, header.wrap_salt, WRAP_INFO, 32)
        try:
            data_key = AESGCM(wrap_key).decrypt(
                header.wrap_nonce, header.wrapped_key, raw[: _HEADER_PREFIX.size]
            )
        except InvalidTag:
            raise BackupCorrupt(
                "the header failed authentication (edited or damaged; the key id matches)"
            ) from None
        self._header = header
        self._header_hash = hashlib.sha256(raw).digest()
        self._aead = AESGCM(data_key)


def encrypt_stream(
    key: BackupKey | bytes, pieces: Iterable[bytes], chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[bytes]:
    """The whole stream (header, frames, final frame) for plaintext given in pieces."""
    writer = BackupWriter(key, chunk_size)
    yield writer.header()
    for piece in pieces:
        yield from writer.feed(piece)
    yield writer.finish()


def decrypt_stream(key: BackupKey | bytes, pieces: Iterable[bytes]) -> Iterator[bytes]:
    """The authenticated plaintext of a stream given in pieces; raises at the first fault,
    including a missing final chunk once the pieces run out."""
    reader = BackupReader(key)
    for piece in pieces:
        yield from reader.feed(piece)
    reader.finish()
