"""Build the gateways of a fleet: hardware, modem pty, USB tree, proxy, producer.

Everything is derived from the fleet seed and the gateway index, so the
same settings build the same fleet (device ids, rooms, ICCIDs, IMEIs,
peripherals and traffic profiles).
"""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

from firmware_sim.clock import AcceleratedClock, SkewedClock
from firmware_sim.gateway import AgentFactory, GatewaySpec, SimGateway, UsbControl
from firmware_sim.hardware import GatewayHardware, RoomPeripheral, imei_for, room_peripherals
from firmware_sim.modem_hub import ModemHub
from firmware_sim.producers import LineProducer
from firmware_sim.proxy import UplinkProxy
from firmware_sim.scenario import FleetSettings


def device_id(settings: FleetSettings, index: int) -> str:
    """Return the id of gateway ``index`` (``gw-0001``...)."""
    return f"{settings.device_prefix}-{index + 1:04d}"


def serial_of(index: int) -> str:
    """Return the serial number gateway ``index`` is registered under."""
    return f"SIM{index:06d}"


def room_of(settings: FleetSettings, index: int) -> str:
    """Return the room of gateway ``index`` (gateways are spread evenly)."""
    rooms = settings.rooms or max(settings.devices // 2, 1)
    return f"room-{index % rooms + 1:03d}"


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1 (from the kernel's ephemeral range)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ListenerPorts:
    """Hands out free ports for agents' listeners BELOW the ephemeral range.

    A port found free now is bound by the agent only later; meanwhile a
    socket bound to port 0 (an uplink proxy, a client) could get the same
    port from the kernel's ephemeral range (32768-60999 on Linux). Ports
    below it are never handed out that way, so they cannot be taken.
    """

    LOW, HIGH = 20_000, 32_000

    def __init__(self, seed: int) -> None:
        self._next = self.LOW + (seed * 7919) % (self.HIGH - self.LOW)
        self._given: set[int] = set()

    def take(self) -> int:
        """Return a port nothing listens on now and that was not handed out before."""
        for _ in range(self.HIGH - self.LOW):
            port = self._next
            self._next = self.LOW if port + 1 >= self.HIGH else port + 1
            if port in self._given:
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            self._given.add(port)
            return port
        raise OSError("no free listener port below the ephemeral range")


def _make_modem(
    settings: FleetSettings, hw: GatewayHardware, directory: Path, hub: ModemHub | None
) -> object:
    from firmware_sim.fake_modem import FakeModem, FakeModemConfig

    directory.mkdir(parents=True, exist_ok=True)
    modem = FakeModem(
        directory,
        FakeModemConfig(
            imei=imei_for(settings.seed, hw.device),
            iccid=hw.iccid,
            imsi=hw.imsi,
            seed=settings.seed,
            link_name="ttyUSB2",
        ),
        hub=hub,
    )
    modem.plug()
    return modem


def _make_usb(directory: Path, expected: tuple[RoomPeripheral, ...]) -> UsbControl:
    from firmware_sim.usb_tree import build_usb_tree

    return build_usb_tree(directory, expected)


async def build_gateway(
    settings: FleetSettings,
    clock: AcceleratedClock,
    factory: AgentFactory,
    index: int,
    ports: ListenerPorts,
    *,
    hub: ModemHub | None = None,
) -> SimGateway:
    """Build (but do not start) gateway ``index``."""
    device = device_id(settings, index)
    base = settings.work_dir / device
    hw = GatewayHardware(settings.seed, device)
    modem_port = ""
    if settings.modem:
        modem = await asyncio.to_thread(_make_modem, settings, hw, base / "dev", hub)
        hw.modem = modem  # type: ignore[assignment]
        modem_port = str(base / "dev" / "ttyUSB2")
    expected = room_peripherals(settings.seed, device, 2 + index % 3)
    usb = None
    sysfs = ""
    if settings.peripherals:
        usb = await asyncio.to_thread(_make_usb, base / "sys", expected)
        sysfs = str(base / "sys")
    proxy = None
    host, port = settings.broker_host, settings.broker_port
    if settings.outage_proxy:
        proxy = UplinkProxy(settings.broker_host, settings.broker_port)
        port = await proxy.start()
        host = "127.0.0.1"
    producer = None
    data_port = 0
    if settings.data:
        data_port = ports.take()
        producer = LineProducer(port=data_port)
    spec = GatewaySpec(
        device=device,
        index=index,
        account=settings.account,
        room=room_of(settings, index),
        broker_host=host,
        broker_port=port,
        state_dir=base / "state",
        clock=SkewedClock(clock),
        hardware=hw,
        data_port=data_port,
        data_stream="sensors",
        modem_port=modem_port,
        sysfs_root=sysfs,
        expected=expected,
        meter_interval_s=settings.meter_interval_s,
        mqtt_protocol=settings.mqtt_protocol,
    )
    spec.state_dir.mkdir(parents=True, exist_ok=True)
    return SimGateway(index, spec, proxy, producer, usb, factory)


async def build_gateways(
    settings: FleetSettings,
    clock: AcceleratedClock,
    factory: AgentFactory,
    hub: ModemHub | None = None,
) -> list[SimGateway]:
    """Build every gateway of the fleet; their fake modems share ``hub`` (one thread)."""
    ports = ListenerPorts(settings.seed + os.getpid())
    return [
        await build_gateway(settings, clock, factory, i, ports, hub=hub)
        for i in range(settings.devices)
    ]
