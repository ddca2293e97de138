import CInferenceKernels
import COpenBLAS

/// The OpenBLAS library the engine runs on: which kernel it picked and how many threads it uses.
/// `OPENBLAS_CORETYPE` in the environment overrides OpenBLAS's CPU detection (see
/// `shared/reference/toolchain.md` §3); `coreName` reports the result.
public enum BLASRuntime {
    /// The kernel family OpenBLAS selected, for example `Haswell` or `Cooperlake`.
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// OpenBLAS's build configuration string.
    public static var configuration: String { String(cString: openblas_get_config()) }

    /// Threads OpenBLAS uses for one call.
    public static var threadCount: Int { Int(openblas_get_num_threads()) }

    /// Sets the threads OpenBLAS uses per call (process-wide). With concurrent requests on a
    /// small host, 1 is usually best.
    public static func setThreadCount(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
}

/// The engine's own kernels next to OpenBLAS (the direct convolution of `ConvKernel`, the
/// packed-weight GEMM of `GemmKernel`/`MatMulKernel`): which instruction set they run with,
/// chosen once from the CPU's features.
public enum KernelRuntime {
    /// `avx512`, `avx2` (with FMA) or `baseline`.
    public static var directConvolution: String { String(cString: outpost_kernel_isa_name()) }

    /// What multiplies by a constant weight matrix: `packed avx512`, `packed avx2`, or
    /// `openblas` (no AVX2 on this CPU, or `OUTPOST_GEMM=openblas` in the environment).
    public static var weightGEMM: String { PackedMatrix.kernelName }
}
