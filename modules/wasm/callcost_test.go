package wasm

import (
	"context"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// BenchmarkCallCost splits what a call into header.wasm costs: the call alone, with the
// per-call deadline, and restoring its 64 KiB memory (instances: reset), each without and
// with WithCloseOnContextDone (which the entries used before their time limit was
// instrumented, interrupt.go: it makes an endless loop stoppable at the price of a
// goroutine per call).
//
//	go test -run '^$' -bench CallCost ./modules/wasm/
func BenchmarkCallCost(b *testing.B) {
	ctx := context.Background()
	i32 := api.ValueTypeI32
	for _, watch := range []bool{false, true} {
		name := map[bool]string{false: "unwatched", true: "closeOnContextDone"}[watch]
		b.Run(name, func(b *testing.B) {
			rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(watch))
			defer rt.Close(ctx)
			noop := api.GoModuleFunc(func(context.Context, api.Module, []uint64) {})
			if _, err := rt.NewHostModuleBuilder(conduitModule).NewFunctionBuilder().
				WithGoModuleFunction(noop, []api.ValueType{i32, i32, i32, i32}, nil).
				Export("conduit_set_response_header").Instantiate(ctx); err != nil {
				b.Fatal(err)
			}
			cm, err := rt.CompileModule(ctx, guest(b, "wat/header.wasm"))
			if err != nil {
				b.Fatal(err)
			}
			m, err := rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName(""))
			if err != nil {
				b.Fatal(err)
			}
			fn := m.ExportedFunction(exportOnResponse)
			stack := make([]uint64, 1)
			b.Run("call", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					_ = fn.CallWithStack(ctx, stack)
				}
			})
			b.Run("call+deadline", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					c, cancel := context.WithTimeout(ctx, time.Second)
					_ = fn.CallWithStack(c, stack)
					cancel()
				}
			})
			snap, err := takeSnapshot(m, nil, true)
			if err != nil {
				b.Fatal(err)
			}
			globals, _ := snap.globals(m)
			b.Run("reset", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					snap.restore(m, globals)
				}
			})
		})
	}
}
