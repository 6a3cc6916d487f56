package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Where the CPU went during a phase, read from /proc: the service process,
// every Postgres process of the bench cluster, this process (receiver, load
// generator, and in baseline phases the bare River client or pgbench), and
// everything else on the machine (other people's work: the noise).

// clockTicks is USER_HZ, the unit of /proc CPU times; 100 on every Linux
// build that matters (it is not the kernel's HZ).
const clockTicks = 100

// cpuUse is a phase's CPU, in cores (CPU seconds per wall second).
type cpuUse struct {
	Service  float64 `json:"service"`
	Postgres float64 `json:"postgres"`
	Bench    float64 `json:"bench"`
	Other    float64 `json:"other"`
	Idle     float64 `json:"idle"`
	WallS    float64 `json:"wall_s"`
}

type cpuSnapshot struct {
	at                       time.Time
	service, postgres, bench float64 // CPU seconds
	machineBusy, machineIdle float64
}

// cpuMeter snapshots CPU use; servicePID may be 0 (no service running).
type cpuMeter struct {
	postmasterPID func() int
}

func (m cpuMeter) snapshot(servicePID int) cpuSnapshot {
	s := cpuSnapshot{at: time.Now()}
	if servicePID > 0 {
		s.service = procCPU(servicePID, false)
	}
	s.bench = procCPU(os.Getpid(), true)
	if pm := m.postmasterPID(); pm > 0 {
		// Exited backends' time is in the postmaster's cutime/cstime, live
		// ones' in their own: the sum is every Postgres process's CPU.
		s.postgres = procCPU(pm, true)
		for _, pid := range childrenOf(pm) {
			s.postgres += procCPU(pid, true)
		}
	}
	s.machineBusy, s.machineIdle = machineCPU()
	return s
}

// use is the CPU between two snapshots, in cores.
func (a cpuSnapshot) use(b cpuSnapshot) cpuUse {
	var c cpuAccum
	c.add(a, b)
	return c.use()
}

// cpuAccum adds up the CPU of several phases, so that interleaved rounds
// report as one.
type cpuAccum struct {
	service, postgres, bench, busy, idle, wall float64 // seconds
}

func (c *cpuAccum) add(a, b cpuSnapshot) {
	c.service += b.service - a.service
	c.postgres += b.postgres - a.postgres
	c.bench += b.bench - a.bench
	c.busy += b.machineBusy - a.machineBusy
	c.idle += b.machineIdle - a.machineIdle
	c.wall += b.at.Sub(a.at).Seconds()
}

func (c cpuAccum) use() cpuUse {
	if c.wall <= 0 {
		return cpuUse{}
	}
	u := cpuUse{
		Service:  round(c.service/c.wall, 2),
		Postgres: round(c.postgres/c.wall, 2),
		Bench:    round(c.bench/c.wall, 2),
		Other:    round(max(c.busy-c.service-c.postgres-c.bench, 0)/c.wall, 2),
		Idle:     round(c.idle/c.wall, 2),
		WallS:    round(c.wall, 2),
	}
	return u
}

// perJob spreads the CPU over the n jobs done meanwhile, in milliseconds.
func (c cpuAccum) perJob(n int) cpuCost {
	if n == 0 {
		return cpuCost{}
	}
	f := 1000 / float64(n)
	return cpuCost{Service: round(c.service*f, 3), Postgres: round(c.postgres*f, 3), Bench: round(c.bench*f, 3)}
}

func (u cpuUse) String() string {
	return fmt.Sprintf("service %.2f, postgres %.2f, bench %.2f, other %.2f, idle %.2f cores",
		u.Service, u.Postgres, u.Bench, u.Other, u.Idle)
}

// procStat returns the fields of /proc/PID/stat after the command name.
func procStat(pid int) []string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// procCPU is a process's CPU seconds, with its waited-for children's when
// children is set. Fields after the name: state(0) ppid(1) … utime(11)
// stime(12) cutime(13) cstime(14).
func procCPU(pid int, children bool) float64 {
	f := procStat(pid)
	if len(f) < 15 {
		return 0
	}
	ticks := atof(f[11]) + atof(f[12])
	if children {
		ticks += atof(f[13]) + atof(f[14])
	}
	return ticks / clockTicks
}

func childrenOf(ppid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := procStat(pid); len(f) > 1 && f[1] == strconv.Itoa(ppid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// machineCPU is the whole machine's busy and idle CPU seconds (/proc/stat).
func machineCPU() (busy, idle float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line)) // cpu user nice system idle iowait irq softirq steal …
	if len(f) < 9 {
		return 0, 0
	}
	for i, v := range f[1:9] {
		switch i {
		case 3, 4: // idle, iowait
			idle += atof(v)
		default:
			busy += atof(v)
		}
	}
	return busy / clockTicks, idle / clockTicks
}

func atof(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

// cpuCost is CPU milliseconds per unit of work, by process.
type cpuCost struct {
	Service  float64 `json:"service"`
	Postgres float64 `json:"postgres"`
	Bench    float64 `json:"bench"`
}

func (c cpuCost) String() string {
	return fmt.Sprintf("service %.2f, postgres %.2f, bench %.2f ms", c.Service, c.Postgres, c.Bench)
}
