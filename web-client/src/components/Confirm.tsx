import { useEffect, useRef, useState, type ReactNode } from "react";
import { buttonClass, secondaryButtonClass } from "./States";

/**
 * A button that asks before acting: the first press shows the question with
 * "Confirm" and "Cancel" (focus moves to Confirm; Escape cancels).
 */
export function ConfirmButton({
  label,
  question,
  confirmLabel,
  onConfirm,
  disabled,
}: {
  label: string;
  question: ReactNode;
  confirmLabel: string;
  onConfirm: () => void | Promise<void>;
  disabled?: boolean;
}) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const confirmRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (asking) confirmRef.current?.focus();
  }, [asking]);
  if (!asking) {
    return (
      <button type="button" className={buttonClass} disabled={disabled} onClick={() => setAsking(true)}>
        {label}
      </button>
    );
  }
  const confirm = async () => {
    setBusy(true);
    try {
      await onConfirm();
    } finally {
      setBusy(false);
      setAsking(false);
    }
  };
  return (
    <div
      role="group"
      aria-label={label}
      className="flex flex-wrap items-center gap-2 rounded border border-amber-400 bg-amber-50 p-2"
      onKeyDown={(event) => {
        if (event.key === "Escape") setAsking(false);
      }}
    >
      <span>{question}</span>
      <button ref={confirmRef} type="button" className={buttonClass} disabled={busy} onClick={() => void confirm()}>
        {confirmLabel}
      </button>
      <button type="button" className={secondaryButtonClass} onClick={() => setAsking(false)}>
        Cancel
      </button>
    </div>
  );
}
