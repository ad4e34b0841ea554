"""Learning benchmark v2 (issue 14): the protocol of `../PROTOCOL.md` as code.

`data` (domains, tasks, the condensing set), `training` (the one training loop every arm uses), `arms` (the arm list:
every arm is a row, built through the public hf_learngene API or transformers), `plan` (which cells to run),
`runner` (ancestor, learngenes, worker processes, resumable JSONL) and `report` (paired statistics, tables, plots).
"""
