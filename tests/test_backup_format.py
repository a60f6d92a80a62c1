"""The backup stream format: what goes in comes out, and any damage, cut, reordering,
edited header or wrong key stops the reader before a bad chunk's plaintext is released."""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.backup_format import (
    FRAME_HEAD_LEN,
    HEADER_LEN,
    KEY_KIND_PASSPHRASE,
    KEY_KIND_RAW,
    MAGIC,
    BackupCorrupt,
    BackupError,
    BackupKey,
    BackupKeyInvalid,
    BackupKeyMissing,
    BackupReader,
    BackupWriter,
    WrongKey,
    decrypt_stream,
    derive_key,
    encrypt_stream,
    max_frame_len,
    parse_header,
)
from services.errors import NotConfigured

KEY = derive_key("9f" * 32)
OTHER_KEY = derive_key("a0" * 32)
CHUNK = 64  # small chunks so many-chunk streams stay fast
EMAIL = b"mallory.customer@example.com"
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _stream(data: bytes, chunk_size: int = CHUNK, key: BackupKey = KEY) -> list[bytes]:
    """The stream as [header, frame 0, frame 1, ..., final frame]."""
    return list(encrypt_stream(key, [data], chunk_size))


def _read(blob: bytes, key: BackupKey = KEY, piece: int = 37) -> tuple[bytes, object]:
    reader = BackupReader(key)
    out = []
    for i in range(0, len(blob), piece):
        out += reader.feed(blob[i : i + piece])
    return b"".join(out), reader.finish()


def _read_until_failure(blob: bytes, key: BackupKey = KEY, piece: int = 23):
    """(plaintext released before the failure, the error); fails the test if none is raised."""
    reader = BackupReader(key)
    released = []
    try:
        for i in range(0, len(blob), piece):
            released += reader.feed(blob[i : i + piece])
        reader.finish()
    except (BackupCorrupt, WrongKey) as error:
        return b"".join(released), error
    pytest.fail("the damaged stream was read without complaint")


def _data(n: int) -> bytes:
    """Half random, half compressible text with an email in it, like a dump."""
    line = b"42\t" + EMAIL + b"\tpaid\t2026-11-30 12:00:00\n"
    text = (line * (n // len(line) + 1))[: n - n // 2]
    return os.urandom(n // 2) + text


# Round trip


@pytest.mark.parametrize(
    "size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 50 * CHUNK, 50 * CHUNK + 7], ids=lambda n: f"{n}B"
)
def test_round_trip_at_the_sizes_that_matter(size):
    data = _data(size)
    frames = _stream(data)
    plain, summary = _read(b"".join(frames))
    assert plain == data
    assert summary.plaintext_bytes == size
    assert summary.plaintext_sha256 == hashlib.sha256(data).hexdigest()
    assert summary.chunks == len(frames) - 1 == size // CHUNK + 1  # a full last chunk gets an empty final
    assert summary.stored_bytes == len(b"".join(frames))


@FAST
@given(
    data=st.binary(max_size=3000),
    chunk_size=st.integers(1, 700),
    feed_pieces=st.lists(st.integers(1, 900), min_size=1, max_size=20),
    read_piece=st.integers(1, 1200),
)
def test_round_trip_any_data_fed_in_any_pieces(data, chunk_size, feed_pieces, read_piece):
    writer = BackupWriter(KEY, chunk_size)
    blob = bytearray(writer.header())
    offset = 0
    for n in itertools.cycle(feed_pieces):
        if offset >= len(data):
            break
        for frame in writer.feed(data[offset : offset + n]):
            blob += frame
        assert writer.buffered < chunk_size
        offset += n
    blob += writer.finish()
    plain, summary = _read(bytes(blob), piece=read_piece)
    assert plain == data
    assert summary.plaintext_sha256 == writer.plaintext_sha256 == hashlib.sha256(data).hexdigest()
    assert (summary.chunks, summary.compressed_bytes, summary.stored_bytes) == (
        writer.chunks,
        writer.compressed_bytes,
        writer.output_bytes,
    )


def test_compressible_dumps_shrink_and_the_counters_say_so():
    data = _data(200_000)[100_000:]  # the text half only
    writer = BackupWriter(KEY, 16 * 1024)
    blob = writer.header() + b"".join(writer.feed(data)) + writer.finish()
    assert writer.plaintext_bytes == len(data)
    assert writer.compressed_bytes < len(data) / 10
    assert len(blob) == writer.output_bytes < len(data) / 10


def test_a_stream_written_by_this_format_version_still_reads():
    # Stored bytes of a version-1 stream (chunk size 16): a change to the format that
    # would orphan existing backups fails here.
    stored = bytes.fromhex(
        "894f505342414b0a01010103000000101b572556b2f7472ae0e8f0f80008101820283038404850586068"
        "707880889098a0a8b0b8c0c8d0d8c0c8d0d8e0e8f0f1f901091119212931394149c30ffbdcc28e516b58"
        "1f2d84474c1047fee6afd869d437dba8528b27223553d69429b422fc4fd86a2041ee69ea52155a000000"
        "29006d1c1f00d7544679692e53f3a5a6cf5dc1d2e717ab137c48e6b1d6c88f6de8ffa4aa67dc9debe086"
        "990000002101946401441226bd711b2433c8b5d1d2dc09c88b38ddaa42eac64fce05a80e1f1636"
    )
    plain, summary = _read(stored, key=BackupKey(bytes(range(32))))
    assert plain == b"vector: a stored stream!"
    assert summary.chunks == 2


def test_the_header_says_what_it_is():
    header = parse_header(BackupWriter(KEY, CHUNK).header())
    assert header.raw.startswith(MAGIC) and len(header.raw) == HEADER_LEN
    assert (header.version, header.chunk_size, header.key_kind) == (1, CHUNK, KEY_KIND_RAW)
    assert header.key_id == KEY.key_id


def test_two_backups_of_the_same_data_share_nothing():
    data = _data(5 * CHUNK)
    first, second = _stream(data), _stream(data)
    assert parse_header(first[0]).wrapped_key != parse_header(second[0]).wrapped_key
    assert not set(first[1:]) & set(second[1:])


# Plaintext never leaves the writer


def test_plaintext_never_appears_in_the_stream():
    data = _data(40 * CHUNK) + EMAIL
    blob = b"".join(_stream(data, chunk_size=1024))
    assert EMAIL in data
    assert EMAIL not in blob
    assert b"example.com" not in blob
    assert b"paid\t2026" not in blob


# Damage of every kind is found, and named by chunk


def _frame_starts(frames: list[bytes]) -> list[int]:
    starts, at = [], 0
    for frame in frames:
        starts.append(at)
        at += len(frame)
    return starts


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_a_flipped_bit_anywhere_is_caught_before_its_chunk_is_released(data):
    plain = _data(6 * CHUNK + 5)
    frames = _stream(plain)
    blob = bytearray(b"".join(frames))
    position = data.draw(st.integers(0, len(blob) - 1), label="position")
    blob[position] ^= 1 << data.draw(st.integers(0, 7), label="bit")

    released, error = _read_until_failure(bytes(blob))
    starts = _frame_starts(frames)
    if position < HEADER_LEN:
        assert error.chunk is None if isinstance(error, BackupCorrupt) else isinstance(error, WrongKey)
        assert released == b""
    else:
        chunk = max(i for i, start in enumerate(starts) if start <= position) - 1
        assert isinstance(error, BackupCorrupt)
        assert error.chunk == chunk
        assert f"chunk {chunk}" in str(error)
        assert plain.startswith(released) and len(released) <= chunk * CHUNK


def test_a_stream_cut_anywhere_is_truncated():
    plain = _data(4 * CHUNK + 3)
    frames = _stream(plain)
    blob = b"".join(frames)
    boundaries = set(_frame_starts(frames))
    for cut in range(len(blob)):
        released, error = _read_until_failure(blob[:cut])
        assert isinstance(error, BackupCorrupt), cut
        assert plain.startswith(released)
        if cut in boundaries and cut > HEADER_LEN:
            assert "truncated" in str(error) and "final chunk" in str(error)


def test_dropping_the_final_chunk_is_truncation_even_at_a_chunk_boundary():
    plain = _data(3 * CHUNK)
    frames = _stream(plain)
    released, error = _read_until_failure(b"".join(frames[:-1]))
    assert error.chunk == 3
    assert "truncated" in str(error)
    assert released == plain  # every chunk that came was good; only the promise of an end is missing


@FAST
@given(data=st.data())
def test_swapped_chunks_are_caught_at_the_first_one_out_of_place(data):
    frames = _stream(_data(8 * CHUNK + 9))
    i = data.draw(st.integers(1, len(frames) - 2), label="i")
    j = data.draw(st.integers(i + 1, len(frames) - 1), label="j")
    frames[i], frames[j] = frames[j], frames[i]
    released, error = _read_until_failure(b"".join(frames))
    assert isinstance(error, BackupCorrupt) and error.chunk == i - 1
    assert len(released) <= (i - 1) * CHUNK


def test_a_dropped_or_repeated_middle_chunk_is_caught():
    frames = _stream(_data(5 * CHUNK))
    for damaged in (frames[:3] + frames[4:], frames[:3] + frames[2:]):
        _released, error = _read_until_failure(b"".join(damaged))
        assert error.chunk == 2


def test_bytes_after_the_final_chunk_are_refused():
    blob = b"".join(_stream(_data(2 * CHUNK)))
    for tail in (b"\x00", blob[HEADER_LEN:]):
        _released, error = _read_until_failure(blob + tail, piece=len(blob) + len(tail))
        assert "follow the final chunk" in str(error)


def test_chunks_from_another_backup_with_the_same_key_do_not_fit():
    first, second = _stream(_data(3 * CHUNK)), _stream(_data(3 * CHUNK))
    _released, error = _read_until_failure(b"".join([first[0], *second[1:]]))
    assert error.chunk == 0


def test_a_wrong_key_is_named_as_such_before_any_chunk():
    blob = b"".join(_stream(_data(3 * CHUNK)))
    released, error = _read_until_failure(blob, key=OTHER_KEY)
    assert isinstance(error, WrongKey)
    assert KEY.key_id.hex() in str(error) and OTHER_KEY.key_id.hex() in str(error)
    assert released == b""


def test_a_passphrase_backup_read_with_another_key_says_it_wants_a_passphrase():
    blob = b"".join(_stream(b"x", key=derive_key("correct horse battery staple")))
    _released, error = _read_until_failure(blob, key=derive_key("correct horse battery stapler"))
    assert isinstance(error, WrongKey) and "passphrase" in str(error)


@pytest.mark.parametrize(
    "field, offset, value",
    [
        ("zstd level", 11, b"\x09"),
        ("chunk size", 12, struct.pack(">I", 2 * CHUNK)),
        ("wrap salt", 24, b"\x00" * 32),
        ("nonce prefix", 56, b"\x00" * 7),
        ("wrap nonce", 63, b"\x00" * 12),
        ("wrapped key", 75, b"\x00" * 48),
    ],
)
def test_an_edited_header_field_fails_the_header(field, offset, value):
    frames = _stream(_data(2 * CHUNK))
    header = bytearray(frames[0])
    header[offset : offset + len(value)] = value
    released, error = _read_until_failure(b"".join([bytes(header), *frames[1:]]))
    assert isinstance(error, BackupCorrupt) and error.chunk is None, field
    assert "header" in str(error)
    assert released == b""


def test_a_header_claiming_the_readers_key_id_still_fails():
    frames = _stream(_data(CHUNK), key=OTHER_KEY)
    header = bytearray(frames[0])
    header[16:24] = KEY.key_id
    _released, error = _read_until_failure(b"".join([bytes(header), *frames[1:]]))
    assert isinstance(error, BackupCorrupt) and "header failed authentication" in str(error)


def test_not_a_backup_at_all():
    _released, error = _read_until_failure(b"\x1f\x8b" + b"gzip, not ours" * 20)
    assert "not an opsconsole backup" in str(error)


# Memory stays bounded


def test_the_reader_holds_at_most_one_frame_whatever_the_feeding():
    chunk = 4096
    blob = b"".join(_stream(os.urandom(50 * chunk), chunk_size=chunk))
    limit = max_frame_len(chunk)
    reader, produced, offset = BackupReader(KEY), 0, 0
    for n in [1, 3, FRAME_HEAD_LEN, 100, limit - 1, limit + 1, 3 * limit, 5000] * 40:
        for plain in reader.feed(blob[offset : offset + n]):
            assert len(plain) <= chunk
            produced += len(plain)
        assert reader.buffered <= limit
        offset += n
        if offset >= len(blob):
            break
    assert reader.finish().chunks == 51 and produced == 50 * chunk

    # Fed everything at once, it copies nothing into its buffer.
    whole = BackupReader(KEY)
    assert sum(map(len, whole.feed(blob))) == 50 * chunk and whole.buffered == 0


def test_the_writer_holds_less_than_a_chunk():
    writer = BackupWriter(KEY, 1000)
    for n in (1, 999, 1000, 1001, 2500, 7):
        writer.feed(os.urandom(n))
        assert writer.buffered < 1000


def test_a_frame_head_claiming_a_huge_length_is_refused_before_buffering():
    frames = _stream(_data(2 * CHUNK))
    bogus = struct.pack(">IB", 2**31, 0)
    reader = BackupReader(KEY)
    reader.feed(frames[0])
    with pytest.raises(BackupCorrupt, match="chunk 0's frame head is damaged"):
        reader.feed(bogus + b"\x00" * 100)
    assert reader.buffered == 0


# The writer's lifecycle


def test_a_finished_writer_takes_nothing_more():
    writer = BackupWriter(KEY, CHUNK)
    writer.finish()
    with pytest.raises(BackupError):
        writer.feed(b"more")
    with pytest.raises(BackupError):
        writer.finish()


def test_decrypt_stream_gives_back_what_encrypt_stream_took():
    pieces = [_data(n) for n in (0, 10, CHUNK, 3 * CHUNK + 1)]
    stream = encrypt_stream(KEY, pieces, CHUNK)
    assert b"".join(decrypt_stream(KEY, stream)) == b"".join(pieces)
    with pytest.raises(BackupCorrupt, match="truncated"):
        list(decrypt_stream(KEY, _stream(b"abc" * CHUNK)[:-1]))


# The key from BACKUP_ENCRYPTION_KEY


def test_a_hex_or_base64_key_is_used_as_given():
    raw = os.urandom(32)
    for text in (raw.hex(), raw.hex().upper(), f"  {raw.hex()}\n", base64.b64encode(raw).decode()):
        key = derive_key(text)
        assert key.material == raw and key.kind == KEY_KIND_RAW
    assert derive_key(base64.urlsafe_b64encode(raw).decode()).material == raw


def test_a_passphrase_goes_through_hkdf_and_is_recorded_as_one():
    key = derive_key("sixteen chars!!!")
    assert key == derive_key("sixteen chars!!!")
    assert key.kind == KEY_KIND_PASSPHRASE and len(key.material) == 32
    assert key.material != derive_key("sixteen chars!!?").material
    assert parse_header(BackupWriter(key).header()).key_kind == KEY_KIND_PASSPHRASE


@pytest.mark.parametrize("configured", [None, "", "   \n"])
def test_no_key_means_no_backups(configured):
    with pytest.raises(BackupKeyMissing, match="BACKUP_ENCRYPTION_KEY is not set") as caught:
        derive_key(configured)
    assert isinstance(caught.value, NotConfigured)


@pytest.mark.parametrize("configured", ["short", "fifteen chars!!", "ab" * 7])
def test_a_short_key_is_refused_with_what_to_give_instead(configured):
    with pytest.raises(BackupKeyInvalid, match="at least 16 characters") as caught:
        derive_key(configured)
    assert f"is {len(configured)} characters" in str(caught.value)


def test_a_key_never_shows_its_material():
    key = derive_key("9f" * 32)
    assert "9f9f" not in repr(key) and key.key_id.hex() in repr(key)
