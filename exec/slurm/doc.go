// Package slurm is a small typed client over Slurm's own machine interfaces:
// sbatch --parsable (the script on stdin), squeue --json, sacct --json and
// scancel. It never parses human-formatted columns and never runs a shell:
// every command is an argument vector, run with a context that bounds it.
//
// Slurm 22.05 (Debian 12) notes, probed on a single node:
//   - squeue --json ignores its filter options (--jobs, --states) and lists
//     every job slurmctld still holds, ended ones included for MinJobAge
//     seconds; Query filters by id itself. When slurmctld is down it still
//     exits 0, with the failure in the JSON's "errors": Query turns that into
//     an error.
//   - sacct needs slurmdbd; without it ("accounting storage is disabled") a
//     job that left squeue is simply not found.
//   - scontrol has no --json in 22.05.
//   - exit_code is a raw wait status in 22.05 (768 = exit 3, 15 = SIGTERM);
//     later versions give an object; both are read.
//
// A user's config/slurm line is checked by ParseOptions against an
// allow-list of sbatch options before it reaches a command line.
package slurm
