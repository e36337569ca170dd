//! The executor worker actor: runs the jobs it is sent, one at a time (it only ever gets one,
//! since the pool sends to a worker only with its slot held).

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::msg::WorkerMsg;

/// One executor worker. Stateless: a restart loses nothing but the job it was running.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Worker;

impl Actor for Worker {
    type Msg = WorkerMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<WorkerMsg>,
        _args: (),
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<WorkerMsg>,
        msg: WorkerMsg,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WorkerMsg::Run(job) => run_job(job).await,
            WorkerMsg::Crash => panic!("executor worker crash requested (failure injection)"),
        }
    }
}

async fn run_job(job: super::msg::Job) -> Result<(), ActorProcessingErr> {
    job()
        .await
        .map_err(|panic| format!("tool job panicked: {panic}").into())
}
