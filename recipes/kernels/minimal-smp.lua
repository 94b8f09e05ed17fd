-- The minimal kernel for several CPUs: minimal.lua's source and build, with smp.config merged
-- over its fragment (a later fragment's value of an option wins). For `--smp N` with N > 1;
-- one-CPU boots are 11 % slower on it than on `minimal` (BENCHMARKS.md), so it is not the default.
return {
  description = "minimal + SMP (up to 8 CPUs)",
  base = "minimal",
  config = {"engitor-min.config", "smp.config"},
}
