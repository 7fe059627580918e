// Fixtures run side by side: each test has its own database, simulator, ports and spool, and most of the suite's
// time is spent waiting on sockets and servers, not computing (a serial run used about a fifth of two cores).
[assembly: Parallelizable(ParallelScope.Fixtures)]
[assembly: LevelOfParallelism(3)]
