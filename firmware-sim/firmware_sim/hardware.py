"""The simulated hardware of one gateway: interface counters, modem, peripherals.

``GatewayHardware`` owns what the real agent reads through its seams: the
``FakeStats`` counters of ``wwan0`` (the SIM's data) and the VPN tunnels,
the boot id, and — when enabled — a fake AT modem on a pseudo-terminal
whose data counters advance with the SIM traffic, and a fake sysfs tree of
USB room peripherals. Faults act here: a reboot resets every counter and
draws a new boot id, a SIM swap changes the ICCID.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from agent.system import FakeStats, NicCounters
from firmware_sim.profiles import TrafficProfile, pick_profile, splitmix64, stream_key

WWAN = "wwan0"
VPN_TUNNELS = ("wg0", "tun0")
ROOM_MODELS = (
    ("Rally Bar", "046d", "089b"),
    ("Rally Bar Mini", "046d", "08d3"),
    ("Rally Plus", "046d", "0881"),
    ("Rally", "046d", "0881"),
    ("Rally Camera", "046d", "0888"),
    ("Meetup", "046d", "0866"),
    ("Tap", "046d", "0876"),
    ("Tap IP", "046d", "08d8"),
    ("Swytch", "046d", "08e3"),
    ("RoomMate", "046d", "08e1"),
    ("Scribe", "046d", "08d9"),
)
"""Room products of the seed's supported list, with USB ids for the fake sysfs."""


class ModemControl(Protocol):
    """What the simulator does to a modem (the fake AT modem implements it)."""

    def add_traffic(self, sent: int, recv: int) -> None:
        """Advance the modem's data counters."""

    def swap_sim(self, iccid: str, imsi: str) -> None:
        """Put a new SIM in."""

    def unplug(self) -> None:
        """Disappear from the USB bus."""

    def plug(self) -> None:
        """Come back (a new pty behind the same path)."""


@dataclass(frozen=True, slots=True)
class Subject:
    """One metered thing of a gateway: a VPN tunnel or the SIM."""

    service: str
    nic: str
    profile: TrafficProfile
    key: int


def iccid_for(seed: int, device: str, generation: int) -> str:
    """Return a plausible 19-digit ICCID (Italian prefix) for a device's n-th SIM."""
    digits = splitmix64(stream_key(seed, device, "iccid", str(generation))) % 10**10
    return f"893910452{digits:010d}"


def imsi_for(iccid: str) -> str:
    """Return an IMSI that goes with ``iccid``."""
    return "22210" + iccid[-10:]


def imei_for(seed: int, device: str) -> str:
    """Return a 15-digit IMEI for a device's modem."""
    return f"86153603{splitmix64(stream_key(seed, device, 'imei')) % 10**7:07d}"


@dataclass(frozen=True, slots=True)
class RoomPeripheral:
    """One USB room product attached to a gateway."""

    model: str
    vendor_id: str
    product_id: str
    serial: str
    port: str


def room_peripherals(seed: int, device: str, count: int) -> tuple[RoomPeripheral, ...]:
    """Draw ``count`` room products with serial numbers for a device."""
    out = []
    for i in range(count):
        k = splitmix64(stream_key(seed, device, "usb", str(i)))
        model, vid, pid = ROOM_MODELS[k % len(ROOM_MODELS)]
        serial = f"{2200 + k % 99:04d}LZ{(k >> 8) % 36**6:06X}"[:12]
        out.append(RoomPeripheral(model, vid, pid, serial, f"1-1.{i + 1}"))
    return tuple(out)


@dataclass
class GatewayHardware:
    """Counters and devices of one simulated gateway."""

    seed: int
    device: str
    stats: FakeStats = field(default_factory=FakeStats)
    subjects: list[Subject] = field(default_factory=list)
    modem: ModemControl | None = None
    sim_generation: int = 0
    boots: int = 0
    modem_present: bool = True

    def __post_init__(self) -> None:
        self.stats.boot = self._boot_id()
        tunnels = 1 + splitmix64(stream_key(self.seed, self.device, "tunnels")) % 2
        self.subjects = [
            Subject(
                "sim",
                WWAN,
                pick_profile(stream_key(self.seed, self.device, WWAN)),
                stream_key(self.seed, self.device, WWAN),
            )
        ]
        for nic in VPN_TUNNELS[:tunnels]:
            key = stream_key(self.seed, self.device, nic)
            self.subjects.append(Subject("vpn", nic, pick_profile(key), key))
        for s in self.subjects:
            self.stats.nics[s.nic] = NicCounters(0, 0, ifindex=self._ifindex(s.nic))

    def _boot_id(self) -> str:
        k = splitmix64(stream_key(self.seed, self.device, "boot", str(self.boots)))
        return f"{k:016x}-{self.boots:04d}"

    def _ifindex(self, nic: str) -> int:
        return 2 + [s.nic for s in self.subjects].index(nic) if self.subjects else 2

    @property
    def iccid(self) -> str:
        """Return the ICCID of the SIM in the modem now."""
        return iccid_for(self.seed, self.device, self.sim_generation)

    @property
    def imsi(self) -> str:
        """Return the IMSI of the SIM in the modem now."""
        return imsi_for(self.iccid)

    def subject_name(self, s: Subject) -> str:
        """Return the subject a correct meter bills ``s`` under (ICCID for the SIM)."""
        return self.iccid if s.service == "sim" else s.nic

    def move(self, s: Subject, nbytes: int) -> None:
        """Account ``nbytes`` of traffic on ``s`` (split 1/3 sent, 2/3 received)."""
        if nbytes <= 0:
            return
        tx = nbytes // 3
        rx = nbytes - tx
        old = self.stats.nics[s.nic]
        self.stats.nics[s.nic] = NicCounters(
            old.bytes_sent + tx, old.bytes_recv + rx, old.ifindex, old.up
        )
        if s.service == "sim" and self.modem is not None:
            self.modem.add_traffic(tx, rx)

    def reboot(self) -> None:
        """Power-cycle: interface counters restart at zero under a new boot id."""
        self.boots += 1
        self.stats.boot = self._boot_id()
        for s in self.subjects:
            self.stats.nics[s.nic] = NicCounters(0, 0, ifindex=self._ifindex(s.nic))
        # The modem is power-cycled with the gateway; a Quectel keeps its data
        # counters in NVRAM, so they survive (the fake modem does the same).
        if self.modem is not None and self.modem_present:
            self.modem.unplug()
            self.modem.plug()

    def swap_sim(self) -> None:
        """Put a new SIM (new ICCID) in the modem."""
        self.sim_generation += 1
        if self.modem is not None:
            self.modem.swap_sim(self.iccid, self.imsi)

    def unplug_modem(self) -> None:
        """Take the modem off the bus (cellular traffic stops)."""
        self.modem_present = False
        if self.modem is not None:
            self.modem.unplug()

    def replug_modem(self) -> None:
        """Put the modem back."""
        self.modem_present = True
        if self.modem is not None:
            self.modem.plug()
