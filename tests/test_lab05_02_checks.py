"""Lab 05_02's checks reject the classic mistakes of first CUDA kernels (no
bounds guard, an index from threadIdx alone, rows and columns swapped, a
"coalesced" copy that walks along the rows, a blur whose border wraps around,
PTX readers that return every line or none) and accept other correct kernels
(a grid-stride loop, the index computed by hand, an early return as the
guard, neighbours tested one by one)."""

import pytest
from check_helpers import boom, raises_cleanly, rejects

from model2metal import device
from model2metal.checks import lab05_02 as checks

if device.select_cuda_backend() != "simulator":  # pragma: no cover
    pytest.skip("these tests feed kernels to the simulator", allow_module_level=True)

from numba import cuda  # noqa: E402

# --- vector add ------------------------------------------------------------------


@cuda.jit
def add_grid(x, y, out):
    i = cuda.grid(1)
    if i < out.size:
        out[i] = x[i] + y[i]


@cuda.jit
def add_by_hand_early_return(x, y, out):
    i = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if i >= x.shape[0]:
        return
    out[i] = y[i] + x[i]


@cuda.jit
def add_grid_stride(x, y, out):
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = x[i] + y[i]


def test_vector_add_accepts_correct_kernels():
    for kernel in (add_grid, add_by_hand_early_return, add_grid_stride):
        checks.check_vector_add(kernel)


@cuda.jit
def add_no_guard(x, y, out):
    i = cuda.grid(1)
    out[i] = x[i] + y[i]


@cuda.jit
def add_thread_idx_only(x, y, out):
    i = cuda.threadIdx.x
    if i < out.size:
        out[i] = x[i] + y[i]


@cuda.jit
def add_guard_off_by_one(x, y, out):
    i = cuda.grid(1)
    if i <= out.size:
        out[i] = x[i] + y[i]


@cuda.jit
def add_guard_too_strict(x, y, out):
    i = cuda.grid(1)
    if i < out.size - 1:
        out[i] = x[i] + y[i]


@cuda.jit
def add_every_thread_does_all(x, y, out):
    for i in range(out.size):
        out[i] = x[i] + y[i]


@cuda.jit
def add_into_x(x, y, out):
    i = cuda.grid(1)
    if i < out.size:
        x[i] += y[i]
        out[i] = x[i]


@pytest.mark.parametrize("kernel, expect", [
    (add_no_guard, r"case 'n = 1, 1 block\(s\) of 32'.*IndexError.*"
                   r"32 threads for 1 element\(s\): the last block has 31"),
    (add_guard_off_by_one, r"IndexError.*the last block has \d+ thread"),
    (add_thread_idx_only, r"case 'n = 33, 2 block.*out\[32\]: expected .*"
                          r"got NaN \(never written.*only the first block's 32"),
    (add_guard_too_strict, r"out\[0\]: expected .*got NaN.*no thread wrote "
                           r"out\[0\]: the thread with grid index 0 must pass"),
    (add_every_thread_does_all, r"two threads wrote one element: global out\[0\]"
                                r".*job of one thread"),
    (add_into_x, r"wrote into its input `x`"),
])
def test_vector_add_rejects(kernel, expect):
    rejects(checks.check_vector_add, kernel, expect=expect)


def test_vector_add_reports_a_kernel_that_raises_and_bad_arguments():
    @cuda.jit
    def broken(x, y, out):
        out[0] = x[0] + undefined  # noqa: F821

    raises_cleanly(checks.check_vector_add, broken, expect="NameError")
    rejects(checks.check_vector_add, lambda x, y, out: None,
            expect="expected a @cuda.jit kernel")


def test_a_stub_passes_through():
    @cuda.jit
    def stub(x, y, out):
        raise NotImplementedError("lab05_02: implement vector_add()")

    with pytest.raises(NotImplementedError, match="^lab05_02"):
        checks.check_vector_add(stub)

    def find_stub(ptx):
        raise NotImplementedError("lab05_02: implement find_guard()")

    with pytest.raises(NotImplementedError, match="^lab05_02"):
        checks.check_find_guard(find_stub)


# --- 2-D indexing ----------------------------------------------------------------


@cuda.jit
def scale_grid(a, s, out):
    col, row = cuda.grid(2)
    if row < out.shape[0] and col < out.shape[1]:
        out[row, col] = s * a[row, col]


@cuda.jit
def scale_by_hand_early_return(a, s, out):
    col = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    row = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
    if row >= a.shape[0] or col >= a.shape[1]:
        return
    out[row, col] = a[row, col] * s


@cuda.jit
def scale_grid_stride(a, s, out):
    x0, y0 = cuda.grid(2)
    sx, sy = cuda.gridsize(2)
    for row in range(y0, a.shape[0], sy):
        for col in range(x0, a.shape[1], sx):
            out[row, col] = s * a[row, col]


def test_scale_2d_accepts_correct_kernels():
    for kernel in (scale_grid, scale_by_hand_early_return, scale_grid_stride):
        checks.check_scale_2d(kernel)


@cuda.jit
def scale_swapped(a, s, out):
    row, col = cuda.grid(2)
    if row < out.shape[0] and col < out.shape[1]:
        out[row, col] = s * a[row, col]


@cuda.jit
def scale_swapped_guard_too(a, s, out):
    row, col = cuda.grid(2)
    if row < out.shape[1] and col < out.shape[0]:
        out[row, col] = s * a[row, col]


@cuda.jit
def scale_rows_guard_only(a, s, out):
    col, row = cuda.grid(2)
    if row < out.shape[0]:
        out[row, col] = s * a[row, col]


@cuda.jit
def scale_by_two(a, s, out):
    col, row = cuda.grid(2)
    if row < out.shape[0] and col < out.shape[1]:
        out[row, col] = 2.0 * a[row, col]


@pytest.mark.parametrize("kernel, expect", [
    (scale_swapped, r"case '5 x 37.*out\[0, 8\]: expected .*got NaN.*takes its "
                    r"row from the x index"),
    (scale_swapped_guard_too, r"IndexError.*guard both indices"),
    (scale_rows_guard_only, r"IndexError.*40 threads along x for 37 columns"),
    (scale_by_two, r"s = -1.5.*out\[0, 0\]: expected -?\d"),
])
def test_scale_2d_rejects(kernel, expect):
    rejects(checks.check_scale_2d, kernel, expect=expect)


# --- coalescing -------------------------------------------------------------------


@cuda.jit
def rows_walker(a, out):
    i = cuda.grid(1)
    if i < a.shape[0]:
        for j in range(a.shape[1]):
            out[i, j] = a[i, j]


@cuda.jit
def cols_walker(a, out):
    j = cuda.grid(1)
    if j < a.shape[1]:
        for i in range(a.shape[0]):
            out[i, j] = a[i, j]


@cuda.jit
def rows_walker_backwards(a, out):
    i = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if i >= a.shape[0]:
        return
    j = a.shape[1] - 1
    while j >= 0:
        out[i, j] = a[i, j]
        j -= 1


@cuda.jit
def cols_walker_bottom_up(a, out):
    j = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if j >= a.shape[1]:
        return
    for k in range(a.shape[0]):
        i = a.shape[0] - 1 - k
        out[i, j] = a[i, j]


@cuda.jit
def cols_walker_no_guard(a, out):
    j = cuda.grid(1)
    for i in range(a.shape[0]):
        out[i, j] = a[i, j]


def test_copies_accept_correct_kernels():
    checks.check_copy_rows(rows_walker)
    checks.check_copy_rows(rows_walker_backwards)
    checks.check_copy_cols(cols_walker)
    checks.check_copy_cols(cols_walker_bottom_up)


def test_copy_cols_rejects_a_strided_copy():
    rejects(checks.check_copy_cols, rows_walker,
            expect=r"case 'a of 64 x 64.*reads of a are not coalesced: 32.0 "
                   r"sectors.*this layout allows 100.0%.*neighbouring threads")


def test_copy_rows_rejects_a_copy_that_walks_the_columns():
    rejects(checks.check_copy_rows, cols_walker,
            expect=r"thread 0 of the grid read a\[1, 0\].*copies row i")


def test_copies_reject_a_missing_guard():
    rejects(checks.check_copy_cols, cols_walker_no_guard,
            expect=r"IndexError.*64 threads were launched for 5|"
                   r"IndexError.*128 threads were launched for 100")


# --- blur --------------------------------------------------------------------------


def make_blur(wrap=False, over_nine=False, pixel_guard=True, read_then_test=False):
    @cuda.jit
    def blur(img, out):
        col, row = cuda.grid(2)
        rows, cols = img.shape
        if pixel_guard and (row >= rows or col >= cols):
            return
        total = 0.0
        count = 0
        for dr in range(-1, 2):
            for dc in range(-1, 2):
                r, c = row + dr, col + dc
                if read_then_test and r < rows and c < cols:
                    v = img[r, c]
                    if r >= 0 and c >= 0:
                        total += v
                        count += 1
                elif wrap and r < rows and c < cols:
                    total += img[r, c]
                    count += 1
                elif 0 <= r < rows and 0 <= c < cols:
                    total += img[r, c]
                    count += 1
        out[row, col] = total / (9 if over_nine else count)
    return blur


@cuda.jit
def blur_clamped_ranges(img, out):
    col, row = cuda.grid(2)
    if row < img.shape[0] and col < img.shape[1]:
        r0, r1 = max(row - 1, 0), min(row + 1, img.shape[0] - 1)
        c0, c1 = max(col - 1, 0), min(col + 1, img.shape[1] - 1)
        total = 0.0
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                total += img[r, c]
        out[row, col] = total / ((r1 - r0 + 1) * (c1 - c0 + 1))


def test_blur_accepts_correct_kernels():
    checks.check_blur3x3(make_blur())
    checks.check_blur3x3(blur_clamped_ranges)


@pytest.mark.parametrize("kwargs, expect", [
    (dict(wrap=True), r"out\[0, 0\]: expected .*negative index \d+ time.*wraps "
                      r"img\[-1\]"),
    (dict(over_nine=True), r"out\[0, 0\]: expected .*divided by 9"),
    (dict(pixel_guard=False), r"IndexError.*16 threads along x and 8 along y "
                              r"for 9 columns and 7 rows"),
    (dict(read_then_test=True), r"values are right, but the kernel indexed img "
                                r"with a negative index"),
])
def test_blur_rejects(kwargs, expect):
    rejects(checks.check_blur3x3, make_blur(**kwargs), expect=expect)


# --- PTX readers -------------------------------------------------------------------


def guard_by_prefix(ptx):
    return [s for s in ptx.instructions
            if s.startswith("setp.") or (s.startswith("@") and " bra" in s)]


def guard_by_regex_with_pred_logic(ptx):
    return ptx.find(r"^(setp|or\.pred|@%p\d+ bra)")


def loads_by_prefix(ptx):
    return [s for s in ptx.instructions
            if s.startswith("ld.") and not s.startswith("ld.param")]


def loads_by_regex(ptx):
    return tuple(ptx.find(r"^ld\.(?!param)"))


def test_ptx_readers_accept_correct_functions():
    checks.check_find_guard(guard_by_prefix)
    checks.check_find_guard(guard_by_regex_with_pred_logic)
    checks.check_find_loads(loads_by_prefix)
    checks.check_find_loads(loads_by_regex)


@pytest.mark.parametrize("fn, expect", [
    (lambda ptx: list(ptx.instructions), r"\(nearly\) every instruction"),
    (lambda ptx: [], r"missing \(2\): 'setp.*every setp comparison"),
    (lambda ptx: ptx.find("^setp"), r"missing \(1\): '@%p1 bra.*start with @"),
    (lambda ptx: ptx.find("^setp|bra|^ld"), r"not asked for.*'ld\.param.*loads "
                                            r"are not part of the guard"),
    (lambda ptx: ptx.find("^setp|^@")[:2],
     r"2-D copy.*missing \(1\): '@%p\d bra"),
    (lambda ptx: "\n".join(ptx.find("^setp|^@")), r"expected a list of "
                                                   r"instruction lines"),
    (lambda ptx: None, r"got None.*return"),
    (lambda ptx: [1, 2], r"a list of strings"),
])
def test_find_guard_rejects(fn, expect):
    rejects(checks.check_find_guard, fn, expect=expect)


def test_find_guard_rejects_a_guard_found_where_there_is_none():
    def always_a_setp(ptx):
        return ptx.find("^setp|^@") or ["setp.ge.s64 %p1, %rd1, %rd11;"]

    rejects(checks.check_find_guard, always_a_setp,
            expect=r"without a bounds guard.*return an empty list")


@pytest.mark.parametrize("fn, expect", [
    (lambda ptx: ptx.find(r"^ld\."), r"'ld\.param.*arguments"),
    (lambda ptx: ptx.find(r"^ld\.global"), r"'ld\.f32.*generic"),
    (lambda ptx: ptx.find(r"^ld\.f32"), r"contiguous.*'ld\.global\.f32.*"
                                        r"state space"),
    (lambda ptx: ptx.find(r"^(ld|st)\.(?!param)"), r"st\. is a store"),
    (lambda ptx: list(ptx.instructions), r"\(nearly\) every instruction"),
])
def test_find_loads_rejects(fn, expect):
    rejects(checks.check_find_loads, fn, expect=expect)


def test_ptx_readers_report_a_function_that_raises():
    raises_cleanly(checks.check_find_loads, boom, expect="ZeroDivisionError")
