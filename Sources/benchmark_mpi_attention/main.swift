// main.swift — placeholder until the attention benchmark lands.
import BenchSupport
ToolMain.fail("benchmark_mpi_attention", "not built yet")
