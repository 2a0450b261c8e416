"""The classifier -> responder -> escalation-checker pipeline: as a LangGraph graph (graph.py),
as an ADK SequentialAgent (adk_agents.py), and as a keel pipeline with each stage on another
framework (cross_framework.py; `python -m examples.support_pipeline` runs it)."""
