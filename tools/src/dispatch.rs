//! `call_builtin`: runs a built-in tool by name. Blocking filesystem work runs on tokio's
//! blocking pool; the call honours the context's cancellation token and deadline.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::fs::{delete, edit, list, mv, read, stat, write};
use crate::{Result, ToolContext, ToolError, http, search};

fn parse<T: DeserializeOwned>(args: Value) -> Result<T> {
    let args = if args.is_null() {
        Value::Object(Default::default())
    } else {
        args
    };
    serde_json::from_value(args).map_err(|e| ToolError::InvalidArgs {
        message: e.to_string(),
    })
}

fn to_value<T: Serialize>(v: T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| ToolError::failed(crate::FailReason::Io, e.to_string()))
}

async fn blocking<A, R>(
    ctx: &ToolContext,
    args: Value,
    f: fn(&ToolContext, A) -> Result<R>,
) -> Result<Value>
where
    A: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
{
    let args: A = parse(args)?;
    let ctx2 = ctx.clone();
    let task = tokio::task::spawn_blocking(move || f(&ctx2, args));
    let out = guard(ctx, async {
        task.await.map_err(|e| {
            ToolError::failed(crate::FailReason::Panic, format!("tool panicked: {e}"))
        })?
    })
    .await?;
    to_value(out)
}

/// Races `fut` against the context's cancellation and deadline.
async fn guard<T>(ctx: &ToolContext, fut: impl Future<Output = Result<T>>) -> Result<T> {
    let deadline = async {
        match ctx.deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = fut => r,
        () = ctx.cancel.cancelled() => Err(ToolError::Cancelled { reason: "cancel_requested".into() }),
        () = deadline => Err(ToolError::Timeout { timeout_ms: 0 }),
    }
}

/// The built-ins whose work is a bounded handful of syscalls (a non-blocking open, one capped
/// read, an `fstat`): they may run on the calling thread instead of the blocking pool.
pub const INLINE_BUILTINS: &[&str] = &["fs.read", "fs.stat"];

/// Runs one of [`INLINE_BUILTINS`] on the calling thread (no blocking-pool hop); `None` for any
/// other tool. Opens are `O_NONBLOCK` and reads are capped by the output budget, so a FIFO or a
/// huge file cannot stall the caller.
pub fn call_builtin_inline(name: &str, ctx: &ToolContext, args: Value) -> Option<Result<Value>> {
    let run = || -> Result<Value> {
        ctx.check_live()?;
        match name {
            "fs.read" => to_value(read::read(ctx, parse(args)?)?),
            _ => to_value(stat::stat(ctx, parse(args)?)?),
        }
    };
    INLINE_BUILTINS.contains(&name).then(run)
}

/// Runs the built-in tool `name` with `args` (already checked by policy and schema):
/// filesystem work on the blocking pool, raced against the context's cancellation token and
/// deadline. `command.run` is not dispatched here: the runtime calls `command::run` for it.
pub async fn call_builtin(name: &str, ctx: &ToolContext, args: Value) -> Result<Value> {
    ctx.check_live()?;
    match name {
        "fs.read" => blocking(ctx, args, read::read).await,
        "fs.write" => blocking(ctx, args, write::write).await,
        "fs.edit" => blocking(ctx, args, edit::edit).await,
        "fs.list" => blocking(ctx, args, list::list).await,
        "fs.stat" => blocking(ctx, args, stat::stat).await,
        "fs.move" => blocking(ctx, args, mv::move_path).await,
        "fs.delete" => blocking(ctx, args, delete::delete).await,
        "fs.search" => blocking(ctx, args, search::search).await,
        "http.fetch" => {
            let args: http::FetchArgs = parse(args)?;
            to_value(guard(ctx, http::fetch(ctx, args)).await?)
        }
        _ => Err(ToolError::UnknownTool {
            name: name.to_owned(),
        }),
    }
}
