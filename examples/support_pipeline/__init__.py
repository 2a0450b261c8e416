"""The classifier -> responder -> escalation-checker pipeline, as a LangGraph graph."""
