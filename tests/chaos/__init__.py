"""keel's crash-injection suite (research/durability.md, G6).

Each trial runs one order-desk agent (OpenAI Agents SDK, LangGraph or Google ADK, on a scripted
model) through two `keel worker` processes on a fresh store, fails one of them (or the process
that approves) at a named fault point, lets the other carry the run on, and then checks the
invariants against an fsynced side-effect ledger and a crash-free reference run of the same seed.

    workload.py     the order desk: its tools, their classes and the scripted model's moves
    ledger.py       the fsynced side-effect ledger and the fake external API that dedups on keys
    agents_*.py     the order desk in each framework (marks.py: keel's marks on its tools)
    launcher.py     a fork server: workers start in milliseconds instead of seconds
    scenario.py     one run through workers, with a fault or without, observed from outside
    observation.py  what a scenario is told and what it saw
    trial.py        a trial's random choices and its reference run
    invariants.py   what must hold after every trial
    report.py       the table and summary; `python -m chaos` runs a batch (make chaos)
"""
