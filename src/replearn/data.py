"""Seeded Gaussian data: x ~ N(0, I_d), y = f*(x) + ε, chunk-invariant streams.

Sample i of a stream lives in block i // BLOCK_SIZE; every block is drawn from its own
numpy PCG64 generator seeded by SeedSequence(seed, split, block), on the CPU in float64, then cast to the
requested dtype and moved to the requested device. So the data of sample i is the same
whatever the chunk size, the executor, the dtype's precision allowing, and the device.

Label noise ε is symmetric with standard deviation ``noise``: Rademacher (±noise, the
paper's choice) or Gaussian N(0, noise²).

Draw each sample once. A stream keeps the blocks it has drawn — (X, f*(X), y) in its dtype on
its device, exactly what ``get`` would compute again — while they fit its memory budget
``cache_bytes`` (default ``get_cache_bytes()``: a quarter of the available memory, at most
2 GiB; ``set_cache_bytes`` changes it for every stream that was not given its own). Blocks that
do not fit are drawn again on every pass, so memory stays flat in n; the numbers are the same
either way. ``split()`` and ``with_()`` copies with the same target and seed share the store.
When blocks must be drawn on the CPU (numpy's sampler, or torch's on a CPU stream), ``chunks``
draws the next chunk's blocks in DRAW_THREADS background threads while the current chunk is
used (numpy's and torch's generators release the GIL; every block has its own generator, so
the numbers do not depend on which thread drew it).

Two opt-in samplers change the numbers (each is chunk-invariant within itself):
``sample_dtype="float32"`` draws X (and Gaussian ε) directly in float32 with numpy;
``sampler="torch"`` draws each block on the stream's device with a torch.Generator seeded from
the same SeedSequence(seed, split, block), in the stream's dtype (chunk-invariant on a device;
CPU and CUDA give different numbers).
"""

from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from replearn import limits, progress
from replearn.targets import MultiIndexTarget

__all__ = [
    "DataStream",
    "sample",
    "BLOCK_SIZE",
    "NOISE_KINDS",
    "SAMPLERS",
    "SAMPLE_DTYPES",
    "default_cache_bytes",
    "drawn_on_cpu",
    "get_cache_bytes",
    "set_cache_bytes",
]

BLOCK_SIZE = 4096
NOISE_KINDS = ("rademacher", "gaussian")
SAMPLERS = ("numpy", "torch")
SAMPLE_DTYPES = ("float64", "float32")
SPLITS_NOTE = "any name; 'train', 'holdout', 'test' and 'head' are used by replearn"
CACHE_CAP_BYTES = 2 * 2**30  # the default budget never exceeds 2 GiB …
CACHE_SHARE_OF_AVAILABLE = 0.25  # … nor a quarter of the memory available when first asked
_ALIGNMENT = 64  # bytes: torch's CPU allocator aligns every new tensor to this
PREFETCH = True  # draw the next chunk's blocks in background threads (False: in the caller's)
DRAW_THREADS = max(1, min(4, os.cpu_count() or 1))  # threads drawing blocks ahead (each its own)

_cache_bytes_setting: int | None = None  # None: default_cache_bytes()
_default_cache_bytes: int | None = None


def _check_count(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else free pages × page size, else None."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def default_cache_bytes() -> int:
    """min(2 GiB, ¼ of the available memory), read once per process (512 MiB if unknown)."""
    global _default_cache_bytes
    if _default_cache_bytes is None:
        available = _available_memory_bytes()
        share = 512 * 2**20 if available is None else int(available * CACHE_SHARE_OF_AVAILABLE)
        _default_cache_bytes = min(CACHE_CAP_BYTES, share)
    return _default_cache_bytes


def get_cache_bytes() -> int:
    """The budget of every stream created without ``cache_bytes`` (see ``set_cache_bytes``)."""
    return default_cache_bytes() if _cache_bytes_setting is None else _cache_bytes_setting


def set_cache_bytes(cache_bytes: int | None) -> None:
    """Set the global per-stream memory budget for drawn blocks (0: never keep; None: default)."""
    global _cache_bytes_setting
    if cache_bytes is not None:
        cache_bytes = _check_count("cache_bytes", cache_bytes, minimum=0)
    _cache_bytes_setting = cache_bytes


def drawn_on_cpu(stream: DataStream) -> bool:
    """Whether ``stream`` draws its blocks on the CPU (numpy's sampler, or torch's on a CPU
    stream): then background threads can draw ahead (both release the GIL, and every block has
    its own generator, so which thread draws it changes no number).

    Parameters
    ----------
    stream : DataStream

    Returns
    -------
    bool

    Examples
    --------
    >>> import replearn as rl
    >>> target = rl.MultiIndexTarget.from_expression("z1", d=4)
    >>> drawn_on_cpu(rl.DataStream(target)), drawn_on_cpu(rl.DataStream(target, sampler="torch"))
    (True, True)
    """
    return stream.sampler == "numpy" or stream.device.type == "cpu"


def _block_seed_sequence(seed: int, split: str, block: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(seed), zlib.crc32(split.encode()), int(block)])


def _block_generator(seed: int, split: str, block: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(_block_seed_sequence(seed, split, block)))


def _torch_block_generator(seed: int, split: str, block: int, device) -> torch.Generator:
    # a 63-bit seed from the block's SeedSequence: blocks, splits and seeds stay independent
    words = _block_seed_sequence(seed, split, block).generate_state(2, np.uint32)
    torch_seed = (int(words[0]) << 31) ^ int(words[1])
    return torch.Generator(device=device).manual_seed(torch_seed)


class _BlockStore:
    """Drawn blocks kept by key while their bytes fit the budget (first come, first kept).

    Passes run over blocks 0, 1, 2, … in order, so keeping the first blocks that fit (and
    never evicting) makes every later pass draw only the blocks after them; evicting the
    oldest would make a pass of more blocks than fit draw every one of them again.
    """

    def __init__(self, cache_bytes: int | None):
        self.cache_bytes = cache_bytes  # None: follow get_cache_bytes()
        self.blocks: dict[tuple, tuple[torch.Tensor, ...]] = {}
        self.nbytes = 0
        self._lock = threading.Lock()

    @property
    def budget(self) -> int:
        return get_cache_bytes() if self.cache_bytes is None else self.cache_bytes

    def get(self, key: tuple) -> tuple[torch.Tensor, ...] | None:
        return self.blocks.get(key)

    def offer(self, key: tuple, tensors: tuple[torch.Tensor, ...]) -> None:
        size = sum(t.numel() * t.element_size() for t in tensors)
        with self._lock:
            if key not in self.blocks and self.nbytes + size <= self.budget:
                self.blocks[key] = tensors
                self.nbytes += size

    def clear(self) -> None:
        with self._lock:
            self.blocks.clear()
            self.nbytes = 0


class DataStream:
    """An endless, seeded stream of (x_i, y_i) for one target; a pure function of its arguments.

    Parameters
    ----------
    target : MultiIndexTarget
        f*; labels are y_i = f*(x_i) + ε_i with x_i ~ N(0, I_d).
    noise : float
        Standard deviation ς ≥ 0 of the label noise ε.
    seed : int
        ≥ 0; with ``split`` it fixes every sample.
    noise_kind : {"rademacher", "gaussian"}
        ε = ±ς with equal probability (the paper's) or ε ~ N(0, ς²).
    split : str
        Any name; ``"train"``, ``"holdout"``, ``"test"`` and ``"head"`` are used by replearn.
    dtype : torch.float32 or torch.float64
        Of the returned tensors (samples are drawn in float64, then cast).
    device : str or torch.device
        Where the returned tensors live.

    Examples
    --------
    >>> import torch, replearn as rl
    >>> stream = rl.DataStream(rl.paper_target(d=10), noise=1.0, seed=0)
    >>> [X.shape[0] for X, y in stream.chunks(n=10, chunk_size=4)]
    [4, 4, 2]
    >>> by_3000 = torch.cat([y for _, y in stream.chunks(10_000, chunk_size=3000)])
    >>> by_4096 = torch.cat([y for _, y in stream.chunks(10_000, chunk_size=4096)])
    >>> bool(torch.equal(by_3000, by_4096))                  # chunk-invariant
    True
    >>> bool(torch.equal(stream.get(0, 5)[0], stream.split("test").get(0, 5)[0]))
    False

    Notes
    -----
    ``stream.chunks(n, chunk_size)`` yields (X, y) pieces of samples 0…n−1 (or
    ``(X, y, f*(X))`` with ``clean=True``); ``stream.split("holdout")`` is an independent
    stream from the same seed (train / holdout / test never share a sample).
    ``cache_bytes`` bounds the memory kept for later passes (None: the global setting,
    ``set_cache_bytes``; 0: draw every pass again). ``sample_dtype`` and ``sampler`` are the
    opt-in samplers described in the module docstring.
    """

    def __init__(
        self,
        target: MultiIndexTarget,
        noise: float = 0.0,
        seed: int = 0,
        noise_kind: str = "rademacher",
        split: str = "train",
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
        cache_bytes: int | None = None,
        sample_dtype: str = "float64",
        sampler: str = "numpy",
    ):
        if not isinstance(target, MultiIndexTarget):
            raise ValueError(f"target must be a MultiIndexTarget, got {type(target).__name__}")
        noise = float(noise)
        if not np.isfinite(noise) or noise < 0:
            raise ValueError(f"noise must be a finite standard deviation >= 0, got {noise}")
        if noise_kind not in NOISE_KINDS:
            raise ValueError(f"noise_kind must be one of {NOISE_KINDS}, got {noise_kind!r}")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        if not isinstance(split, str) or not split:
            raise ValueError(f"split must be a non-empty string ({SPLITS_NOTE}), got {split!r}")
        if cache_bytes is not None:
            cache_bytes = _check_count("cache_bytes", cache_bytes, minimum=0)
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        if sample_dtype not in SAMPLE_DTYPES:
            raise ValueError(f"sample_dtype must be one of {SAMPLE_DTYPES}, got {sample_dtype!r}")
        if sampler == "torch" and sample_dtype != "float64":
            raise ValueError("sample_dtype applies to sampler='numpy' only (torch draws in dtype)")
        self.target = target
        self.noise = noise
        self.seed = _check_count("seed", seed, minimum=0)
        self.noise_kind = noise_kind
        self.split_name = split
        self.dtype = dtype
        self.device = torch.device(device)
        self.cache_bytes = cache_bytes
        self.sample_dtype = sample_dtype
        self.sampler = sampler
        self._store = _BlockStore(cache_bytes)

    @property
    def d(self) -> int:
        return self.target.d

    @property
    def cache_nbytes(self) -> int:
        """Bytes of drawn blocks this stream's store keeps (shared with its ``split``/``with_`` copies)."""
        return self._store.nbytes

    def clear_cache(self) -> None:
        """Forget the kept blocks (of this stream and the copies sharing its store)."""
        self._store.clear()

    def split(self, name: str) -> DataStream:
        """An independent stream with the same target, noise and seed, for another split."""
        return self.with_(split=name)

    def with_(self, **changes) -> DataStream:
        """A copy with some constructor arguments changed (e.g. target=…, dtype=…)."""
        args = dict(
            target=self.target,
            noise=self.noise,
            seed=self.seed,
            noise_kind=self.noise_kind,
            split=self.split_name,
            dtype=self.dtype,
            device=self.device,
            cache_bytes=self.cache_bytes,
            sample_dtype=self.sample_dtype,
            sampler=self.sampler,
        )
        args.update(changes)
        copy = DataStream(**args)
        same = (copy.target, copy.seed, copy.cache_bytes) == (
            self.target,
            self.seed,
            self.cache_bytes,
        )
        if same and copy.target is self.target:
            copy._store = self._store  # keys name split, noise, dtype, …: blocks never mix
        return copy

    # -- drawing -----------------------------------------------------------------------------
    def _key(self, block: int) -> tuple:
        return (
            self.split_name,
            self.noise,
            self.noise_kind,
            self.dtype,
            self.device,
            self.sample_dtype,
            self.sampler,
            block,
        )

    def _block(
        self, block: int, out: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(X, ε) of one block as drawn (numpy: CPU, sample_dtype; torch: device, dtype).

        The X of a block never depends on the noise. ``out`` (torch's sampler only): a
        contiguous (BLOCK_SIZE, d) tensor of the stream's dtype and device to draw X into
        (the same numbers).
        """
        if self.sampler == "torch":
            generator = _torch_block_generator(self.seed, self.split_name, block, self.device)
            options = dict(generator=generator, device=self.device, dtype=self.dtype)
            if out is None:
                X = torch.randn((BLOCK_SIZE, self.d), **options)
            else:
                X = torch.randn((BLOCK_SIZE, self.d), generator=generator, out=out)
            if self.noise_kind == "rademacher":
                bits = torch.randint(0, 2, (BLOCK_SIZE,), generator=generator, device=self.device)
                epsilon = (bits.to(self.dtype) * 2.0 - 1.0) * self.noise
            else:
                epsilon = torch.randn((BLOCK_SIZE,), **options) * self.noise
            return X, epsilon
        generator = _block_generator(self.seed, self.split_name, block)
        if self.sample_dtype == "float32":
            X = torch.from_numpy(generator.standard_normal((BLOCK_SIZE, self.d), np.float32))
        else:
            X = torch.from_numpy(generator.standard_normal((BLOCK_SIZE, self.d)))
        if self.noise_kind == "rademacher":
            signs = generator.integers(0, 2, size=BLOCK_SIZE).astype(np.float64) * 2.0 - 1.0
            epsilon = torch.from_numpy(signs * self.noise)
        elif self.sample_dtype == "float32":
            noise = np.float32(self.noise)
            epsilon = torch.from_numpy(generator.standard_normal(BLOCK_SIZE, np.float32) * noise)
        else:
            epsilon = torch.from_numpy(generator.standard_normal(BLOCK_SIZE) * self.noise)
        return X, epsilon

    def _draw(self, blocks) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        """The raw blocks among ``blocks`` that the store does not hold (run in a thread)."""
        return {b: self._block(b) for b in blocks if self._store.get(self._key(b)) is None}

    def _materialised(self, block: int, drawn: dict) -> tuple[torch.Tensor, ...]:
        """(X, f*(X), y) of one block in self.dtype on self.device: from the store, or made.

        f* is evaluated on whole blocks (always BLOCK_SIZE rows): BLAS kernels sum in a
        shape-dependent order, so evaluating a slice would make f*(x_i) depend on chunking.
        """
        key = self._key(block)
        kept = self._store.get(key)
        if kept is not None:
            return kept
        X, epsilon = drawn[block] if block in drawn else self._block(block)
        X = X.to(device=self.device, dtype=self.dtype)
        f_star = self.target(X)
        y = f_star + epsilon.to(device=self.device, dtype=self.dtype)
        made = (X, f_star, y)
        self._store.offer(key, made)
        return made

    def _assemble_into(self, start: int, stop: int, drawn: dict, out):
        """Samples start…stop−1 written into out = (X, y): each block's rows copied there — or,
        for a whole block that nothing keeps (torch's sampler, no cache) and whose rows start
        at an address aligned as a new tensor's, drawn there and its labels made there (no block
        allocated, nothing copied; the same numbers: BLAS kernels round the same at the same
        alignment, not at any, so unaligned rows take the copy)."""
        row = 0
        for block in range(start // BLOCK_SIZE, (stop - 1) // BLOCK_SIZE + 1):
            low = max(start, block * BLOCK_SIZE) - block * BLOCK_SIZE
            high = min(stop, (block + 1) * BLOCK_SIZE) - block * BLOCK_SIZE
            X_rows, y_rows = out[0][row : row + high - low], out[1][row : row + high - low]
            in_place = (
                self.sampler == "torch"
                and high - low == BLOCK_SIZE
                and self._store.budget == 0
                and block not in drawn
                # f* by BLAS at the address a new block would have: the same rounding
                and X_rows.data_ptr() % _ALIGNMENT == 0
            )
            if in_place:
                _, epsilon = self._block(block, out=X_rows)
                f_star = self.target(X_rows)
                torch.add(f_star, epsilon.to(device=self.device, dtype=self.dtype), out=y_rows)
            else:
                X, _, y = self._materialised(block, drawn)
                X_rows.copy_(X[low:high])
                y_rows.copy_(y[low:high])
            row += high - low
        return out

    def _assemble(self, start: int, stop: int, clean: bool, drawn: dict, out=None):
        if out is not None:
            return self._assemble_into(start, stop, drawn, out)
        first, last = start // BLOCK_SIZE, (stop - 1) // BLOCK_SIZE
        blocks = [self._materialised(b, drawn) for b in range(first, last + 1)]
        offset = start - first * BLOCK_SIZE
        rows = slice(offset, offset + stop - start)
        # torch.cat copies even one block: a caller may change its chunk in place
        X, f_star, y = (torch.cat(parts)[rows] for parts in zip(*blocks))
        return (X, y, f_star) if clean else (X, y)

    def get(self, start: int, stop: int, clean: bool = False, out=None):
        """Samples start…stop−1 as (X, y) or (X, y, f*(X)), in self.dtype on self.device.

        Parameters
        ----------
        start, stop : int
            0 ≤ start < stop: the half-open range of sample indices.
        clean : bool
            Also return f*(X), the labels without noise.
        out : tuple (X, y) of tensors, optional
            Write the samples into these — (stop − start, d) and (stop − start,), contiguous,
            in self.dtype on self.device — and return them (not with ``clean``): no new
            allocation, the same numbers.

        Returns
        -------
        tuple of torch.Tensor
            X (stop − start, d), y (stop − start,) and, with ``clean``, f*(X).

        Examples
        --------
        >>> import replearn as rl
        >>> stream = rl.DataStream(rl.paper_target(d=10), noise=1.0, seed=0)
        >>> X, y, f_star = stream.get(3, 5, clean=True)
        >>> X.shape, y - f_star                     # Rademacher noise: ±1
        (torch.Size([2, 10]), tensor([ 1., -1.]))
        """
        start = _check_count("start", start, minimum=0)
        stop = _check_count("stop", stop, minimum=start + 1)
        limits.check("n", stop - start, f"get({start}, {stop}): stop − start samples")
        limits.check_memory(
            self._get_bytes(stop - start),
            f"get({start}, {stop}): {stop - start:,} samples at d = {self.d} "
            f"({str(self.dtype).removeprefix('torch.')}; stream them with chunks())",
            str(self.device),
        )
        if out is not None:
            self._check_out(out, stop - start, clean)
        return self._assemble(start, stop, clean, {}, out)

    def _check_out(self, out, rows: int, clean: bool) -> None:
        """``get``'s ``out``: one line naming what is wrong."""
        if clean:
            raise ValueError("get(out=...) returns (X, y): it cannot be combined with clean=True")
        shapes = ((rows, self.d), (rows,))
        if not isinstance(out, tuple | list) or len(out) != 2:
            raise ValueError("out must be a tuple (X, y) of two tensors")
        for name, tensor, shape in zip(("X", "y"), out, shapes, strict=True):
            if (
                not isinstance(tensor, torch.Tensor)
                or tuple(tensor.shape) != shape
                or tensor.dtype != self.dtype
                or tensor.device.type != self.device.type
                or self.device.index not in (None, tensor.device.index)
                or not tensor.is_contiguous()
            ):
                raise ValueError(
                    f"out's {name} must be a contiguous {shape} tensor of "
                    f"{str(self.dtype).removeprefix('torch.')} on {self.device}"
                )

    def _get_bytes(self, rows: int) -> int:
        """Bytes ``get`` allocates for ``rows`` samples: the blocks (X, f*, y) and their
        concatenation, both (rows + 2·BLOCK_SIZE) × (d + 2) in the stream's dtype."""
        item = torch.empty((), dtype=self.dtype).element_size()
        return 2 * (rows + 2 * BLOCK_SIZE) * (self.d + 2) * item

    def chunks(
        self, n: int, chunk_size: int = 65_536, start: int = 0, clean: bool = False
    ) -> Iterator[tuple[torch.Tensor, ...]]:
        """Yield samples start…start+n−1 in pieces of at most chunk_size rows (validated now).

        Parameters
        ----------
        n : int
            Number of samples, ≥ 1.
        chunk_size : int
            Most rows per piece; sample i is the same whatever it is.
        start : int
            Index of the first sample.
        clean : bool
            Yield (X, y, f*(X)) instead of (X, y).

        Returns
        -------
        iterator of tuple of torch.Tensor
            Arguments are checked when ``chunks`` is called, not when iteration starts.

        Examples
        --------
        >>> import replearn as rl
        >>> stream = rl.DataStream(rl.paper_target(d=10), noise=1.0, seed=0)
        >>> [tuple(X.shape) for X, y in stream.chunks(n=10, chunk_size=4, start=100)]
        [(4, 10), (4, 10), (2, 10)]
        """
        n = _check_count("n", n)
        chunk_size = _check_count("chunk_size", chunk_size)
        start = _check_count("start", start, minimum=0)
        limits.check("n", n, "n (samples of the stream)")
        rows = min(chunk_size, n)  # one chunk is materialised at a time (get's memory)
        limits.check_memory(
            self._get_bytes(rows),
            f"chunks of {rows:,} samples at d = {self.d} "
            f"({str(self.dtype).removeprefix('torch.')}; give a smaller chunk_size)",
            str(self.device),
        )
        return progress.track_rows(
            self._chunks(_bounds(start, n, chunk_size), clean), n
        )  # a bar on long passes

    def _chunks(self, bounds: Iterator[tuple[int, int]], clean: bool):
        def block_range(begin: int, stop: int) -> range:
            return range(begin // BLOCK_SIZE, (stop - 1) // BLOCK_SIZE + 1)

        if not (PREFETCH and drawn_on_cpu(self)):  # on an accelerator: drawn there, async
            for begin, stop in bounds:
                yield self._assemble(begin, stop, clean, {})
            return
        drawn: dict = {}
        threads = DRAW_THREADS
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="replearn-draw") as pool:

            def submit(blocks: list[int]) -> list[Future]:
                """Missing blocks drawn by ``threads`` workers (block b by worker b mod threads)."""
                missing = [b for b in blocks if self._store.get(self._key(b)) is None]
                groups = [missing[j::threads] for j in range(threads)]
                return [pool.submit(self._draw, group) for group in groups if group]

            pending: list[Future] = []
            for (begin, stop), following in _with_next(bounds):
                current = block_range(begin, stop)
                if not pending:
                    pending = submit([b for b in current if b not in drawn])
                for future in pending:
                    drawn.update(future.result())
                pending = []
                if following is not None:
                    pending = submit([b for b in block_range(*following) if b not in current])
                chunk = self._assemble(begin, stop, clean, drawn)
                # keep only a block the next chunk shares (chunk_size not a multiple of blocks)
                drawn = {b: v for b, v in drawn.items() if b == current[-1]}
                yield chunk

    def __repr__(self) -> str:
        options = "" if self.sampler == "numpy" else f", sampler={self.sampler!r}"
        options += "" if self.sample_dtype == "float64" else f", sample_dtype={self.sample_dtype!r}"
        return (
            f"DataStream(d={self.d}, noise={self.noise}, seed={self.seed}, "
            f"noise_kind={self.noise_kind!r}, split={self.split_name!r}, dtype={self.dtype}"
            f"{options})"
        )


def _bounds(start: int, n: int, chunk_size: int) -> Iterator[tuple[int, int]]:
    """(begin, stop) of each chunk of samples start…start+n−1, one at a time (never a list:
    n / chunk_size may be 10¹⁰)."""
    end = start + n
    for begin in range(start, end, chunk_size):
        yield begin, min(begin + chunk_size, end)


def _with_next(items: Iterator) -> Iterator[tuple]:
    """(item, the next item or None) for each item, reading one ahead."""
    iterator = iter(items)
    current = next(iterator, None)
    while current is not None:
        following = next(iterator, None)
        yield current, following
        current = following


def sample(
    target: MultiIndexTarget,
    n: int,
    noise: float = 0.0,
    seed: int = 0,
    noise_kind: str = "rademacher",
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    split: str = "train",
    return_clean: bool = False,
):
    """n samples (X, y) — or (X, y, f*(X)) — the first n of DataStream(target, …, seed).

    Parameters
    ----------
    target : MultiIndexTarget
        f*.
    n : int
        Number of samples, ≥ 1.
    noise, seed, noise_kind, dtype, device, split
        As :class:`DataStream`.
    return_clean : bool
        Also return f*(X).

    Returns
    -------
    tuple of torch.Tensor
        X (n, d) and y (n,), plus f*(X) (n,) with ``return_clean``.

    Examples
    --------
    >>> import replearn as rl
    >>> X, y = rl.sample(rl.paper_target(d=10), n=1000, noise=1.0, seed=0)
    >>> X.shape, y.shape, X.dtype
    (torch.Size([1000, 10]), torch.Size([1000]), torch.float32)
    >>> X5, y5 = rl.sample(rl.paper_target(d=10), n=5, noise=1.0, seed=0)
    >>> bool(torch.equal(y5, y[:5]))            # the first n of the same stream
    True
    """
    stream = DataStream(target, noise, seed, noise_kind, split, dtype, device, cache_bytes=0)
    n = _check_count("n", n)
    limits.check("n", n, "n (samples)")
    return stream.get(0, n, clean=return_clean)
