"""Wire the real ``agent`` package into a simulated gateway (placeholder until the daemon lands)."""

from __future__ import annotations

from firmware_sim.errors import ScenarioError
from firmware_sim.gateway import AgentHandle, GatewaySpec


def real_agent_factory(spec: GatewaySpec) -> AgentHandle:
    """Build the real agent for ``spec``."""
    raise ScenarioError(f"the agent daemon is not available yet ({spec.device})")
