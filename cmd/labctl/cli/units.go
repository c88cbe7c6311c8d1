package cli

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeUnits are the suffixes parseSize accepts, each with an optional
// trailing "B": decimal (k, M, G, T: powers of 1000, as dd and iperf's
// uppercase letters are not) and binary (Ki, Mi, Gi, Ti: powers of 1024).
var sizeUnits = map[string]float64{
	"":   1,
	"k":  1e3,
	"K":  1e3,
	"M":  1e6,
	"G":  1e9,
	"T":  1e12,
	"Ki": 1 << 10,
	"Mi": 1 << 20,
	"Gi": 1 << 30,
	"Ti": 1 << 40,
}

// parseSize reads a byte count: 1000, 10M, 1.5G, 100MiB, 64KiB, 10MB.
// Decimal suffixes are powers of 1000, binary ones (with an i) powers of
// 1024. Fractions are allowed when the result is a whole number of bytes.
func parseSize(s string) (uint64, error) {
	num := strings.TrimRight(s, "kKMGTiB")
	unit := strings.TrimSuffix(s[len(num):], "B")
	mult, ok := sizeUnits[unit]
	if !ok || num == "" {
		return 0, fmt.Errorf("%q is not a byte count such as 10M, 1G or 100MiB", s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("%q is not a byte count such as 10M, 1G or 100MiB", s)
	}
	n := v * mult
	if n != math.Trunc(n) {
		return 0, fmt.Errorf("%q is not a whole number of bytes", s)
	}
	if n >= 1<<63 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return uint64(n), nil
}

// formatBytes prints a byte count in decimal units with prec decimals:
// "123.4 MB", "1.25 GB"; below 1000 bytes, "512 B".
func formatBytes(n uint64, prec int) string {
	v, unit := scale(float64(n), prec, "B", "kB", "MB", "GB", "TB")
	if unit == "B" {
		return fmt.Sprintf("%d B", n)
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + " " + unit
}

// formatBitRate prints bits per second with three significant digits and the
// unit that keeps the number below 1000: "667 Mbit/s", "1.00 Gbit/s",
// "9.87 kbit/s".
func formatBitRate(bps float64) string {
	if bps <= 0 || math.IsNaN(bps) || math.IsInf(bps, 0) {
		return "0 bit/s"
	}
	units := []string{"bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"}
	i := 0
	for i < len(units)-1 && sig3(bps) >= 1000 {
		bps /= 1000
		i++
	}
	return sig3Format(bps) + " " + units[i]
}

// scale divides v by 1000 until, printed with prec decimals, it is below
// 1000, and returns it with its unit.
func scale(v float64, prec int, units ...string) (float64, string) {
	i := 0
	for i < len(units)-1 && round(v, prec) >= 1000 {
		v /= 1000
		i++
	}
	return v, units[i]
}

func round(v float64, prec int) float64 {
	p := math.Pow10(prec)
	return math.Round(v*p) / p
}

// sig3 rounds v to three significant digits.
func sig3(v float64) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 3, 64), 64)
	return f
}

// sig3Format prints v (below 1000) with three significant digits, without
// an exponent: 667, 66.7, 6.67, 0.667.
func sig3Format(v float64) string {
	switch r := sig3(v); {
	case r >= 100:
		return strconv.FormatFloat(r, 'f', 0, 64)
	case r >= 10:
		return strconv.FormatFloat(r, 'f', 1, 64)
	case r >= 1:
		return strconv.FormatFloat(r, 'f', 2, 64)
	default:
		return strconv.FormatFloat(r, 'f', 3, 64)
	}
}

// formatSeconds prints a duration in seconds with two decimals: "0.12s".
func formatSeconds(s float64) string {
	return strconv.FormatFloat(s, 'f', 2, 64) + "s"
}
