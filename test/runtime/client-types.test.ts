/**
 * Type-level checks (tsc checks them: tsconfig includes test/; at run time
 * expectTypeOf does nothing): the client's type is the engine contract's,
 * method by method, plus the transfer option where pixels are sent; the
 * exported EmbedOptions is the one the client's embed() takes.
 */
import { describe, expectTypeOf, it } from 'vitest';
import type * as Comlink from 'comlink';
import type * as Main from '../../src/index.js';
import type * as Core from '../../src/core.js';
import type { EmbedImagesOptions } from '../../src/embed/embed.js';
import type { AssignOptions, EmbedOptions, FeatureOrPixels, FitHeadInput, ImageShape, MsnApi, Pixels, PredictOptions } from '../../src/runtime/api.js';
import type { ClientPretrainOptions, EngineHandle, MsnClient, TransferOption } from '../../src/runtime/client.js';
import type { MsnEngine } from '../../src/runtime/engine.js';

/** Engine methods the client offers in another form (init: createMsn; abortPretraining: pretrain's signal). */
type NotOnClient = 'init' | 'abortPretraining';

describe('MsnClient is derived from MsnApi', () => {
  it('has every engine method but init and abortPretraining', () => {
    expectTypeOf<Exclude<keyof MsnApi, keyof MsnClient | NotOnClient>>().toBeNever();
    expectTypeOf<Extract<keyof MsnClient, NotOnClient>>().toBeNever();
  });

  it('keeps the engine signature of methods that send no pixels', () => {
    expectTypeOf<MsnClient['saveCheckpoint']>().toEqualTypeOf<MsnApi['saveCheckpoint']>();
    expectTypeOf<MsnClient['loadCheckpoint']>().toEqualTypeOf<MsnApi['loadCheckpoint']>();
    expectTypeOf<MsnClient['saveHead']>().toEqualTypeOf<MsnApi['saveHead']>();
    expectTypeOf<MsnClient['loadHead']>().toEqualTypeOf<MsnApi['loadHead']>();
    expectTypeOf<MsnClient['deleteHead']>().toEqualTypeOf<MsnApi['deleteHead']>();
    expectTypeOf<MsnClient['capabilities']>().toEqualTypeOf<MsnApi['capabilities']>();
    expectTypeOf<MsnClient['memory']>().toEqualTypeOf<MsnApi['memory']>();
    expectTypeOf<MsnClient['dispose']>().toEqualTypeOf<MsnApi['dispose']>();
  });

  it('adds the transfer option to the pixel argument, same results', () => {
    expectTypeOf<MsnClient['embed']>().parameters.toEqualTypeOf<[pixels: Pixels, shape: ImageShape, opts?: EmbedOptions & TransferOption]>();
    expectTypeOf<MsnClient['embed']>().returns.toEqualTypeOf<ReturnType<MsnApi['embed']>>();
    expectTypeOf<MsnClient['assignPrototypes']>().parameters.toEqualTypeOf<[pixels: Pixels, shape: ImageShape, opts?: AssignOptions & TransferOption]>();
    expectTypeOf<MsnClient['assignPrototypes']>().returns.toEqualTypeOf<ReturnType<MsnApi['assignPrototypes']>>();
    expectTypeOf<MsnClient['fitHead']>().parameters.toEqualTypeOf<[input: FitHeadInput & TransferOption]>();
    expectTypeOf<MsnClient['fitHead']>().returns.toEqualTypeOf<ReturnType<MsnApi['fitHead']>>();
    expectTypeOf<MsnClient['predict']>().parameters.toEqualTypeOf<[headId: string, input: FeatureOrPixels & TransferOption, opts?: PredictOptions]>();
    expectTypeOf<MsnClient['predict']>().returns.toEqualTypeOf<ReturnType<MsnApi['predict']>>();
    // Whatever the engine accepts, the client accepts.
    expectTypeOf<Parameters<MsnApi['embed']>>().toExtend<Parameters<MsnClient['embed']>>();
    expectTypeOf<Parameters<MsnApi['predict']>>().toExtend<Parameters<MsnClient['predict']>>();
  });

  it('takes pretrain callbacks as options, typed as the engine takes them', () => {
    expectTypeOf<MsnClient['pretrain']>().parameter(0).toEqualTypeOf<Parameters<MsnApi['pretrain']>[0]>();
    expectTypeOf<MsnClient['pretrain']>().returns.toEqualTypeOf<ReturnType<MsnApi['pretrain']>>();
    expectTypeOf<ClientPretrainOptions['onProgress']>().toEqualTypeOf<Parameters<MsnApi['pretrain']>[2]>();
    expectTypeOf<ClientPretrainOptions['onCheckpoint']>().toEqualTypeOf<Parameters<MsnApi['pretrain']>[3]>();
    expectTypeOf<MsnClient['ping']>().returns.toEqualTypeOf<ReturnType<MsnApi['ping']>>();
  });

  it("reaches the engine through comlink's Remote view or the engine itself", () => {
    expectTypeOf<Comlink.Remote<MsnApi>>().toExtend<EngineHandle>();
    expectTypeOf<MsnEngine>().toExtend<EngineHandle>();
    expectTypeOf<ReturnType<Comlink.Remote<MsnApi>['embed']>>().toEqualTypeOf<ReturnType<MsnApi['embed']>>();
  });
});

describe('one EmbedOptions', () => {
  it("the main entry's EmbedOptions is the client's; core's embedImages takes EmbedImagesOptions", () => {
    expectTypeOf<Main.EmbedOptions>().toEqualTypeOf<EmbedOptions>();
    expectTypeOf<Core.EmbedImagesOptions>().toEqualTypeOf<EmbedImagesOptions>();
    expectTypeOf<Main.MsnClient['embed']>().parameter(2).toEqualTypeOf<(Main.EmbedOptions & Main.TransferOption) | undefined>();
    expectTypeOf<Parameters<typeof Core.embedImages>[2]>().toEqualTypeOf<EmbedImagesOptions>();
    expectTypeOf<EmbedImagesOptions>().toHaveProperty('mean');
    expectTypeOf<EmbedOptions>().not.toHaveProperty('mean');
  });
});
