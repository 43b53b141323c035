"use client";

import { useState } from "react";
import { CodeStep } from "./CodeStep";
import { ChooseStep } from "./ChooseStep";
import { RestoreStep } from "./RestoreStep";
import { NewSetupStep } from "./NewSetupStep";

type Step = "code" | "choose" | "new" | "restore";

/** First run: the setup code, then New setup or Restore from backup. Each step keeps its own state; the code travels with every call. */
export function SetupWizard() {
  const [step, setStep] = useState<Step>("code");
  const [token, setToken] = useState("");
  if (step === "code") return <CodeStep token={token} onToken={setToken} onVerified={() => setStep("choose")} />;
  if (step === "choose") return <ChooseStep onChoose={setStep} />;
  if (step === "restore") return <RestoreStep token={token} onBack={() => setStep("choose")} />;
  return <NewSetupStep token={token} onBack={() => setStep("choose")} />;
}
